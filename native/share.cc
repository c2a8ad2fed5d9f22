// What `lvs-xdp capture`, connection sync and the shared attach modes need from the kernel:
// reading a ring buffer map (polled, or consumed without waiting), the maps a loaded program uses, and whether a program type may be loaded at all.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <unistd.h>

#include "common.h"

namespace lvs {
namespace {

struct Ring {
  ring_buffer* rb = nullptr;
  std::vector<std::vector<uint8_t>> records;
  size_t max = 0;
};

std::map<uint32_t, std::unique_ptr<Ring>> rings;
uint32_t nextRing = 1;

int OnRecord(void* ctx, void* data, size_t size) {
  Ring* r = static_cast<Ring*>(ctx);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  r->records.emplace_back(p, p + size);
  // A negative return stops ring_buffer__poll after this record (consumed: it is in `records`):
  // the caller asked for at most `max`. libbpf passes the value through; RingbufPoll ignores it.
  return r->records.size() >= r->max ? -ECANCELED : 0;
}

Ring* FindRing(Napi::Env env, uint32_t id) {
  auto it = rings.find(id);
  if (it == rings.end()) throw Napi::RangeError::New(env, "no such ring buffer handle");
  return it->second.get();
}

// ringbufOpen(mapFd) -> handle. The map fd may be closed afterwards (libbpf maps the ring).
Napi::Value RingbufOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "mapFd");
  auto r = std::make_unique<Ring>();
  LogCapture cap;
  r->rb = ring_buffer__new(fd, OnRecord, r.get(), nullptr);
  if (!r->rb) ThrowErrno(env, errno, "ring_buffer__new", "map fd " + std::to_string(fd), cap.text());
  uint32_t id = nextRing++;
  rings[id] = std::move(r);
  return Napi::Number::New(env, id);
}

// ringbufPoll(handle, timeoutMs, max) -> Buffer[] (each one record, copied). Blocks up to timeoutMs.
Napi::Value RingbufPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = FindRing(env, ArgU32(info, 0, "handle"));
  uint32_t timeout = ArgU32(info, 1, "timeoutMs");
  r->max = ArgU32(info, 2, "max");
  if (r->max == 0) r->max = 1;
  r->records.clear();
  int n = ring_buffer__poll(r->rb, static_cast<int>(timeout));
  if (n < 0 && n != -EINTR && n != -ECANCELED) ThrowErrno(env, n, "ring_buffer__poll", "");
  Napi::Array out = Napi::Array::New(env, r->records.size());
  for (size_t i = 0; i < r->records.size(); i++) out.Set(i, BufferFromVector(env, std::move(r->records[i])));
  r->records.clear();
  return out;
}

// ringbufConsume(handle, max) -> Buffer[]: the records ready now, at most `max`, without waiting
// (ring_buffer__consume: no epoll, for a reader on a timer and rings written without wakeup).
Napi::Value RingbufConsume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = FindRing(env, ArgU32(info, 0, "handle"));
  r->max = ArgU32(info, 1, "max");
  if (r->max == 0) r->max = 1;
  r->records.clear();
  int n = ring_buffer__consume(r->rb);
  if (n < 0 && n != -ECANCELED) ThrowErrno(env, n, "ring_buffer__consume", "");
  Napi::Array out = Napi::Array::New(env, r->records.size());
  for (size_t i = 0; i < r->records.size(); i++) out.Set(i, BufferFromVector(env, std::move(r->records[i])));
  r->records.clear();
  return out;
}

Napi::Value RingbufClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "handle");
  auto it = rings.find(id);
  if (it != rings.end()) {
    ring_buffer__free(it->second->rb);
    rings.erase(it);
  }
  return env.Undefined();
}

// progMapIds(progFd) -> number[]: the maps the program uses (its .bss and ring included).
Napi::Value ProgMapIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "progFd");
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof pi);
  __u32 len = sizeof pi;
  int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
  if (err) ThrowErrno(env, err, "bpf_obj_get_info_by_fd", "prog fd " + std::to_string(fd));
  std::vector<__u32> ids(pi.nr_map_ids);
  if (!ids.empty()) {
    uint32_t n = pi.nr_map_ids;
    memset(&pi, 0, sizeof pi);
    pi.nr_map_ids = n;
    pi.map_ids = reinterpret_cast<__u64>(ids.data());
    len = sizeof pi;
    err = bpf_obj_get_info_by_fd(fd, &pi, &len);
    if (err) ThrowErrno(env, err, "bpf_obj_get_info_by_fd", "prog fd " + std::to_string(fd));
  }
  Napi::Array out = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); i++) out.Set(i, Napi::Number::New(env, ids[i]));
  return out;
}

// probeProgType(type) -> {supported, errno}: libbpf's probe (the one bpftool feature probe
// reports), plus the errno of loading a minimal program of that type, for the reason shown.
Napi::Value ProbeProgType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = ArgU32(info, 0, "type");
  LogCapture cap;
  int r = libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(type), nullptr);
  struct bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  int fd = bpf_prog_load(static_cast<bpf_prog_type>(type), nullptr, "GPL", insns, 2, nullptr);
  int loadErr = fd < 0 ? -fd : 0;
  if (fd >= 0) close(fd);
  Napi::Object o = Napi::Object::New(env);
  o.Set("supported", Napi::Boolean::New(env, r == 1));
  o.Set("errno", loadErr ? Napi::Value(Napi::String::New(env, ErrnoName(loadErr))) : env.Null());
  return o;
}

}  // namespace

void InitShare(Napi::Env env, Napi::Object exports) {
  exports.Set("ringbufOpen", Napi::Function::New<RingbufOpen>(env, "ringbufOpen"));
  exports.Set("ringbufPoll", Napi::Function::New<RingbufPoll>(env, "ringbufPoll"));
  exports.Set("ringbufConsume", Napi::Function::New<RingbufConsume>(env, "ringbufConsume"));
  exports.Set("ringbufClose", Napi::Function::New<RingbufClose>(env, "ringbufClose"));
  exports.Set("progMapIds", Napi::Function::New<ProgMapIds>(env, "progMapIds"));
  exports.Set("probeProgType", Napi::Function::New<ProbeProgType>(env, "probeProgType"));
}

}  // namespace lvs
