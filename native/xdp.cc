// XDP attachment through bpf_link (BPF_LINK_CREATE with attach type BPF_XDP): the link owns the
// attachment, can be pinned so it outlives the process, and swaps programs atomically.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <cerrno>

#include "common.h"

namespace lvs {
namespace {

bool IfExists(uint32_t ifindex) {
  char name[IF_NAMESIZE + 1];
  return if_indextoname(ifindex, name) != nullptr;
}

int TryAttach(int progFd, uint32_t ifindex, uint32_t flags, std::string* log) {
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.flags = flags;
  LogCapture cap;
  int fd = bpf_link_create(progFd, static_cast<int>(ifindex), BPF_XDP, &opts);
  *log += cap.text();
  return fd;
}

// BPF_LINK_CREATE cannot return the kernel's explanation (netlink extack) of a refused XDP
// attach; the netlink attach can, and libbpf prints it ("Kernel error message: ..."). After a
// refusal, repeat the attach over netlink only to capture that message. UPDATE_IF_NOEXIST means it
// never replaces a program; should it succeed anyway, our program is detached again at once.
void ProbeKernelMessage(int progFd, uint32_t ifindex, uint32_t flags, int err, std::string* log) {
  if (err == ENODEV || err == EBADF || err == EPERM || err == ENOMEM) return;
  LogCapture cap;
  int r = bpf_xdp_attach(static_cast<int>(ifindex), progFd, flags | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
  if (r == 0) {
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    opts.old_prog_fd = progFd;
    bpf_xdp_detach(static_cast<int>(ifindex), flags | XDP_FLAGS_REPLACE, &opts);
    return;
  }
  const std::string& t = cap.text();
  size_t at = t.find("Kernel error message:");
  if (at == std::string::npos) return;
  size_t end = t.find('\n', at);
  *log += "kernel: " + t.substr(at + 22, end == std::string::npos ? std::string::npos : end - at - 22) + "\n";
}

// xdpAttachLink(progFd, ifindex, mode: 'native' | 'generic') -> {linkFd, mode}
// Attaches in exactly that mode; whether a refused native attach justifies generic mode is the
// caller's decision (src/native/xdp.ts), made from the errno and kernel message thrown here.
Napi::Value XdpAttachLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int progFd = ArgFd(info, 0, "progFd");
  uint32_t ifindex = ArgU32(info, 1, "ifindex");
  std::string mode = ArgString(info, 2, "mode");
  uint32_t flags;
  if (mode == "native") flags = XDP_FLAGS_DRV_MODE;
  else if (mode == "generic") flags = XDP_FLAGS_SKB_MODE;
  else throw Napi::TypeError::New(env, "mode must be 'native' or 'generic'");

  std::string log;
  int fd = TryAttach(progFd, ifindex, flags, &log);
  // The kernel answers EINVAL, not ENODEV, for a missing device: tell the two apart here.
  if (fd == -EINVAL && !IfExists(ifindex))
    ThrowErrno(env, ENODEV, "bpf_link_create", "XDP: no network interface with ifindex " + std::to_string(ifindex), log);
  if (fd < 0) {
    ProbeKernelMessage(progFd, ifindex, flags, -fd, &log);
    ThrowErrno(env, fd, "bpf_link_create", "XDP " + mode + " mode, ifindex " + std::to_string(ifindex), log);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("linkFd", Napi::Number::New(env, fd));
  o.Set("mode", mode);
  return o;
}

// linkDetach(linkFd): detaches the program; the link fd stays valid (defunct) until closed.
Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "linkFd");
  int err = bpf_link_detach(fd);
  if (err) ThrowErrno(env, err, "bpf_link_detach", "link fd " + std::to_string(fd));
  return env.Undefined();
}

// linkUpdate(linkFd, newProgFd, oldProgFd?): atomic program replacement; with oldProgFd, only if
// that program is the one attached (BPF_F_REPLACE), so concurrent updaters cannot lose a swap.
Napi::Value LinkUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "linkFd");
  int prog = ArgFd(info, 1, "newProgFd");
  LIBBPF_OPTS(bpf_link_update_opts, opts);
  if (HasArg(info, 2)) {
    opts.old_prog_fd = static_cast<__u32>(ArgFd(info, 2, "oldProgFd"));
    opts.flags = BPF_F_REPLACE;
  }
  int err = bpf_link_update(fd, prog, &opts);
  if (err) ThrowErrno(env, err, "bpf_link_update", "link fd " + std::to_string(fd));
  return env.Undefined();
}

// xdpQuery(ifindex) -> {attachMode, progId, driverProgId, skbProgId, hwProgId}
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = ArgU32(info, 0, "ifindex");
  // The netlink dump behind bpf_xdp_query finds nothing (and no error) for a missing device.
  if (!IfExists(ifindex))
    ThrowErrno(env, ENODEV, "bpf_xdp_query", "no network interface with ifindex " + std::to_string(ifindex));
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  LogCapture cap;
  int err = bpf_xdp_query(static_cast<int>(ifindex), 0, &opts);
  if (err) ThrowErrno(env, err, "bpf_xdp_query", "ifindex " + std::to_string(ifindex), cap.text());
  const char* mode = "none";
  switch (opts.attach_mode) {
    case XDP_ATTACHED_DRV: mode = "native"; break;
    case XDP_ATTACHED_SKB: mode = "generic"; break;
    case XDP_ATTACHED_HW: mode = "offload"; break;
    case XDP_ATTACHED_MULTI: mode = "multi"; break;
    default: break;
  }
  // feature_flags (xdp-features) needs libbpf >= 1.2; Debian 12's 1.1 lacks it, so it is omitted.
  Napi::Object o = Napi::Object::New(env);
  o.Set("attachMode", mode);
  o.Set("progId", Napi::Number::New(env, opts.prog_id));
  o.Set("driverProgId", Napi::Number::New(env, opts.drv_prog_id));
  o.Set("skbProgId", Napi::Number::New(env, opts.skb_prog_id));
  o.Set("hwProgId", Napi::Number::New(env, opts.hw_prog_id));
  return o;
}

}  // namespace

void InitXdp(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpAttachLink", Napi::Function::New<XdpAttachLink>(env, "xdpAttachLink"));
  exports.Set("linkDetach", Napi::Function::New<LinkDetach>(env, "linkDetach"));
  exports.Set("linkUpdate", Napi::Function::New<LinkUpdate>(env, "linkUpdate"));
  exports.Set("xdpQuery", Napi::Function::New<XdpQuery>(env, "xdpQuery"));
}

}  // namespace lvs
