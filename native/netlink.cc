// One netlink request and its whole answer: the socket, send, and receive until NLMSG_DONE.
// What to ask and how to read the answer (rtnetlink messages, attributes) is TypeScript's
// (src/native/netlink.ts, src/director/rtnl.ts); this file only moves the bytes.
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace lvs {
namespace {

// netlinkDump(protocol, request) -> Buffer: every message answering `request` (a complete
// netlink message whose nlmsg_seq identifies it), concatenated, NLMSG_DONE excluded. An
// NLMSG_ERROR with a nonzero error throws that errno.
Napi::Value NetlinkDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t protocol = ArgU32(info, 0, "protocol");
  Napi::Buffer<uint8_t> req = ArgBuffer(info, 1, "request");
  if (req.Length() < sizeof(nlmsghdr)) throw Napi::RangeError::New(env, "request: shorter than a netlink header");
  nlmsghdr head;
  std::memcpy(&head, req.Data(), sizeof(head));

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, static_cast<int>(protocol));
  if (fd < 0) ThrowErrno(env, errno, "socket", "AF_NETLINK protocol " + std::to_string(protocol));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));  // best effort: richer errors
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, req.Data(), req.Length(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
    ThrowErrno(env, errno, "sendto", "netlink request");

  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(64 * 1024);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "recv", "netlink answer");
    }
    if (n == 0) ThrowErrno(env, EPIPE, "recv", "netlink answer ended before NLMSG_DONE");
    size_t len = static_cast<size_t>(n);
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != head.nlmsg_seq) continue;  // not an answer to this request
      if (h->nlmsg_type == NLMSG_DONE) return BufferFromVector(env, std::move(out));
      if (h->nlmsg_type == NLMSG_ERROR) {
        const nlmsgerr* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) ThrowErrno(env, EBADMSG, "recv", "truncated NLMSG_ERROR");
        if (e->error != 0) ThrowErrno(env, -e->error, "netlink", "request type " + std::to_string(head.nlmsg_type));
        if (!(head.nlmsg_flags & NLM_F_DUMP)) return BufferFromVector(env, std::move(out));  // an ACK
        continue;
      }
      const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
      out.insert(out.end(), p, p + NLMSG_ALIGN(h->nlmsg_len));
      if (!(h->nlmsg_flags & NLM_F_MULTI)) return BufferFromVector(env, std::move(out));
    }
  }
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkDump", Napi::Function::New<NetlinkDump>(env, "netlinkDump"));
}

}  // namespace lvs
