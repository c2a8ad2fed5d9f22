// Object fds in general: info, ids, pinning, closing; interface names.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace lvs {
namespace {

Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof mi);
  __u32 len = sizeof mi;
  int err = bpf_obj_get_info_by_fd(fd, &mi, &len);
  if (err) ThrowErrno(env, err, "bpf_obj_get_info_by_fd", "map fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::Number::New(env, mi.type));
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("flags", Napi::Number::New(env, mi.map_flags));
  o.Set("name", std::string(mi.name, strnlen(mi.name, sizeof mi.name)));
  o.Set("btfId", Napi::Number::New(env, mi.btf_id));
  return o;
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof pi);
  __u32 len = sizeof pi;
  int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
  if (err) ThrowErrno(env, err, "bpf_obj_get_info_by_fd", "prog fd " + std::to_string(fd));
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, pi.id));
  o.Set("type", Napi::Number::New(env, pi.type));
  o.Set("name", std::string(pi.name, strnlen(pi.name, sizeof pi.name)));
  o.Set("tag", std::string(tag));
  // 0 when the program runs interpreted (JIT off, or it failed to JIT).
  o.Set("jitedLen", Napi::Number::New(env, pi.jited_prog_len));
  // Only non-zero while kernel.bpf_stats_enabled=1.
  o.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
  o.Set("runCount", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  return o;
}

Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  struct bpf_link_info li;
  memset(&li, 0, sizeof li);
  __u32 len = sizeof li;
  int err = bpf_obj_get_info_by_fd(fd, &li, &len);
  if (err) ThrowErrno(env, err, "bpf_obj_get_info_by_fd", "link fd " + std::to_string(fd));
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, li.id));
  o.Set("type", Napi::Number::New(env, li.type));
  o.Set("progId", Napi::Number::New(env, li.prog_id));
  if (li.type == BPF_LINK_TYPE_XDP) o.Set("ifindex", Napi::Number::New(env, li.xdp.ifindex));
  return o;
}

Napi::Value FdById(const Napi::CallbackInfo& info, int (*getById)(__u32), const char* op) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "id");
  int fd = getById(id);
  if (fd < 0) ThrowErrno(env, fd, op, "id " + std::to_string(id));
  return Napi::Number::New(env, fd);
}
Napi::Value MapFdById(const Napi::CallbackInfo& info) { return FdById(info, bpf_map_get_fd_by_id, "bpf_map_get_fd_by_id"); }
Napi::Value ProgFdById(const Napi::CallbackInfo& info) { return FdById(info, bpf_prog_get_fd_by_id, "bpf_prog_get_fd_by_id"); }
Napi::Value LinkFdById(const Napi::CallbackInfo& info) { return FdById(info, bpf_link_get_fd_by_id, "bpf_link_get_fd_by_id"); }

Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  std::string path = ArgString(info, 1, "path");
  int err = bpf_obj_pin(fd, path.c_str());
  if (err) ThrowErrno(env, err, "bpf_obj_pin", path);
  return env.Undefined();
}

Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, fd, "bpf_obj_get", path);
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  if (close(fd) != 0) ThrowErrno(env, errno, "close", "fd " + std::to_string(fd));
  return env.Undefined();
}

Napi::Value PossibleCpusJs(const Napi::CallbackInfo& info) {
  int n = PossibleCpus();
  if (n <= 0) ThrowErrno(info.Env(), n ? n : EINVAL, "libbpf_num_possible_cpus");
  return Napi::Number::New(info.Env(), n);
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "name");
  errno = 0;
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) ThrowErrno(env, errno == ENXIO || errno == 0 ? ENODEV : errno, "if_nametoindex", name);
  return Napi::Number::New(env, idx);
}

Napi::Value IfIndexToName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t idx = ArgU32(info, 0, "ifindex");
  char buf[IF_NAMESIZE + 1] = {0};
  errno = 0;
  if (!if_indextoname(idx, buf))
    ThrowErrno(env, errno == ENXIO || errno == 0 ? ENODEV : errno, "if_indextoname", "ifindex " + std::to_string(idx));
  return Napi::String::New(env, buf);
}

}  // namespace

void InitFds(Napi::Env env, Napi::Object exports) {
  exports.Set("mapInfo", Napi::Function::New<MapInfo>(env, "mapInfo"));
  exports.Set("progInfo", Napi::Function::New<ProgInfo>(env, "progInfo"));
  exports.Set("linkInfo", Napi::Function::New<LinkInfo>(env, "linkInfo"));
  exports.Set("mapFdById", Napi::Function::New<MapFdById>(env, "mapFdById"));
  exports.Set("progFdById", Napi::Function::New<ProgFdById>(env, "progFdById"));
  exports.Set("linkFdById", Napi::Function::New<LinkFdById>(env, "linkFdById"));
  exports.Set("objPin", Napi::Function::New<ObjPin>(env, "objPin"));
  exports.Set("objGet", Napi::Function::New<ObjGet>(env, "objGet"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("possibleCpus", Napi::Function::New<PossibleCpusJs>(env, "possibleCpus"));
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
  exports.Set("ifIndexToName", Napi::Function::New<IfIndexToName>(env, "ifIndexToName"));
}

}  // namespace lvs
