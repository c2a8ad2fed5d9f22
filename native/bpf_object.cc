// BpfObject: one libbpf bpf_object (an ELF file of programs and maps) from open to close.
// Configuration (globals, map sizes, reused maps) happens between open() and load(); BTF can be
// read at any time after open(), so layout checks do not need a kernel load.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace lvs {
namespace {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "BpfObject",
        {
            InstanceMethod<&BpfObject::Open>("open"),
            InstanceMethod<&BpfObject::Load>("load"),
            InstanceMethod<&BpfObject::Close>("close"),
            InstanceMethod<&BpfObject::SetGlobal>("setGlobal"),
            InstanceMethod<&BpfObject::GetGlobal>("getGlobal"),
            InstanceMethod<&BpfObject::MapNames>("mapNames"),
            InstanceMethod<&BpfObject::ProgNames>("progNames"),
            InstanceMethod<&BpfObject::MapDef>("mapDef"),
            InstanceMethod<&BpfObject::SetMaxEntries>("setMaxEntries"),
            InstanceMethod<&BpfObject::ReuseMapFd>("reuseMapFd"),
            InstanceMethod<&BpfObject::SetPinPath>("setPinPath"),
            InstanceMethod<&BpfObject::MapFd>("mapFd"),
            InstanceMethod<&BpfObject::ProgFd>("progFd"),
            InstanceMethod<&BpfObject::BtfStruct>("btfStruct"),
            InstanceMethod<&BpfObject::BtfEnum>("btfEnum"),
            InstanceAccessor<&BpfObject::IsLoaded>("loaded"),
        });
  }

  explicit BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {}
  ~BpfObject() override {
    // A load in flight holds a reference to this object, so busy_ is false here.
    if (obj_) bpf_object__close(obj_);
  }

 private:
  friend class LoadWorker;

  bpf_object* obj_ = nullptr;
  std::vector<char> logBuf_;  // kernel verifier/BTF log; libbpf keeps a pointer to it
  std::string path_;
  bool loaded_ = false;
  bool loadFailed_ = false;
  bool busy_ = false;  // a load() is running on a worker thread

  // Checks shared by the methods: the object is open, not being loaded, and (optionally) is or
  // is not loaded yet.
  enum class Need { Any, Unloaded, Loaded };
  void Check(Napi::Env env, const char* what, Need need) {
    if (busy_) throw Napi::Error::New(env, std::string(what) + ": object is being loaded");
    if (!obj_) throw Napi::Error::New(env, std::string(what) + ": object is not open");
    if (need == Need::Unloaded && loaded_)
      throw Napi::Error::New(env, std::string(what) + ": must be called before load()");
    if (need == Need::Unloaded && loadFailed_)
      throw Napi::Error::New(env, std::string(what) + ": a load of this object failed; open it again");
    if (need == Need::Loaded && !loaded_)
      throw Napi::Error::New(env, std::string(what) + ": object is not loaded");
  }

  bpf_map* FindMap(Napi::Env env, const std::string& name, const char* what) {
    bpf_map* m = bpf_object__find_map_by_name(obj_, name.c_str());
    if (!m) ThrowErrno(env, ENOENT, what, "no map named '" + name + "' in " + path_);
    return m;
  }

  // open(path, {logSize?, logLevel?})
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (obj_ || busy_) throw Napi::Error::New(env, "open: object is already open");
    std::string path = ArgString(info, 0, "path");
    uint32_t logSize = 4u << 20, logLevel = 0;
    if (HasArg(info, 1)) {
      Napi::Object o = info[1].As<Napi::Object>();
      OptU32(o, "logSize", &logSize);
      OptU32(o, "logLevel", &logLevel);
    }
    if (logSize < 4096) logSize = 4096;
    logBuf_.assign(logSize, '\0');

    LIBBPF_OPTS(bpf_object_open_opts, opts);
    opts.kernel_log_buf = logBuf_.data();
    opts.kernel_log_size = logBuf_.size();
    opts.kernel_log_level = logLevel;  // 0: libbpf retries a failed load with level 1

    LogCapture cap;
    errno = 0;
    bpf_object* o = bpf_object__open_file(path.c_str(), &opts);
    int err = o ? 0 : (errno ? errno : EINVAL);
    if (!o) ThrowErrno(env, err, "bpf_object__open_file", path, cap.text());
    obj_ = o;
    path_ = path;
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (busy_) throw Napi::Error::New(info.Env(), "close: object is being loaded");
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
    loaded_ = false;
    return info.Env().Undefined();
  }

  Napi::Value IsLoaded(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), loaded_); }

  // Finds a global variable's place: the internal map backing its DATASEC, its offset and size.
  struct GlobalRef {
    bpf_map* map = nullptr;
    uint32_t offset = 0;
    uint32_t size = 0;
    std::string section;
  };
  GlobalRef FindGlobal(Napi::Env env, const std::string& name, const char* what) {
    const struct btf* btf = bpf_object__btf(obj_);
    if (!btf) ThrowErrno(env, ENOENT, what, path_ + " has no BTF");
    __u32 n = btf__type_cnt(btf);
    for (__u32 id = 1; id < n; id++) {
      const struct btf_type* t = btf__type_by_id(btf, id);
      if (!btf_is_datasec(t)) continue;
      const struct btf_var_secinfo* vsi = btf_var_secinfos(t);
      for (int i = 0; i < btf_vlen(t); i++, vsi++) {
        const struct btf_type* vt = btf__type_by_id(btf, vsi->type);
        if (!vt || !btf_is_var(vt)) continue;
        if (name != btf__name_by_offset(btf, vt->name_off)) continue;
        std::string sec = btf__name_by_offset(btf, t->name_off);
        // libbpf records the DATASEC's type id as the internal map's value type; the name
        // suffix is the fallback ("<obj>.rodata").
        bpf_map* found = nullptr;
        bpf_map* m;
        bpf_object__for_each_map(m, obj_) {
          if (!bpf_map__is_internal(m)) continue;
          if (bpf_map__btf_value_type_id(m) == id) { found = m; break; }
        }
        if (!found) {
          bpf_object__for_each_map(m, obj_) {
            if (!bpf_map__is_internal(m)) continue;
            std::string mn = bpf_map__name(m);
            if (mn.size() >= sec.size() && mn.compare(mn.size() - sec.size(), sec.size(), sec) == 0) {
              found = m;
              break;
            }
          }
        }
        if (!found) ThrowErrno(env, ENOENT, what, "'" + name + "' is in section " + sec + ", which has no data map");
        GlobalRef r;
        r.map = found;
        r.offset = vsi->offset;
        r.size = vsi->size;
        r.section = sec;
        return r;
      }
    }
    ThrowErrno(env, ENOENT, what, "no global variable named '" + name + "' in " + path_);
  }

  // setGlobal(name, Buffer): sets a global's initial value (e.g. a `const volatile` knob in
  // .rodata) before load. The size must match the variable's.
  Napi::Value SetGlobal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "setGlobal", Need::Unloaded);
    std::string name = ArgString(info, 0, "name");
    Napi::Buffer<uint8_t> value = ArgBuffer(info, 1, "value");
    GlobalRef g = FindGlobal(env, name, "setGlobal");
    if (value.Length() != g.size)
      ThrowErrno(env, EINVAL, "setGlobal",
                 "'" + name + "' is " + std::to_string(g.size) + " bytes, got " +
                     std::to_string(value.Length()));
    size_t sz = 0;
    const void* init = bpf_map__initial_value(g.map, &sz);
    if (!init || static_cast<size_t>(g.offset) + g.size > sz)
      ThrowErrno(env, EINVAL, "setGlobal", "'" + name + "' lies outside its section's data");
    // Before load the initial value is libbpf's own writable copy of the section.
    memcpy(static_cast<uint8_t*>(const_cast<void*>(init)) + g.offset, value.Data(), g.size);
    return env.Undefined();
  }

  // getGlobal(name) -> Buffer: a copy of the global's initial (pre-load) value.
  Napi::Value GetGlobal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "getGlobal", Need::Any);
    std::string name = ArgString(info, 0, "name");
    GlobalRef g = FindGlobal(env, name, "getGlobal");
    size_t sz = 0;
    const void* init = bpf_map__initial_value(g.map, &sz);
    if (!init || static_cast<size_t>(g.offset) + g.size > sz)
      ThrowErrno(env, EINVAL, "getGlobal", "'" + name + "' has no readable initial value");
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(init) + g.offset, g.size);
  }

  Napi::Value MapNames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "mapNames", Need::Any);
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    bpf_map* m;
    bpf_object__for_each_map(m, obj_) out.Set(i++, bpf_map__name(m));
    return out;
  }

  Napi::Value ProgNames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "progNames", Need::Any);
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    bpf_program* p;
    bpf_object__for_each_program(p, obj_) out.Set(i++, bpf_program__name(p));
    return out;
  }

  // mapDef(name) -> the map's definition as declared in the object (usable before load).
  Napi::Value MapDef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "mapDef", Need::Any);
    bpf_map* m = FindMap(env, ArgString(info, 0, "map"), "mapDef");
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", Napi::Number::New(env, bpf_map__type(m)));
    o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
    o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
    o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
    o.Set("flags", Napi::Number::New(env, bpf_map__map_flags(m)));
    o.Set("internal", Napi::Boolean::New(env, bpf_map__is_internal(m)));
    return o;
  }

  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "setMaxEntries", Need::Unloaded);
    std::string name = ArgString(info, 0, "map");
    uint32_t n = ArgU32(info, 1, "maxEntries");
    bpf_map* m = FindMap(env, name, "setMaxEntries");
    int err = bpf_map__set_max_entries(m, n);
    if (err) ThrowErrno(env, err, "bpf_map__set_max_entries", name);
    return env.Undefined();
  }

  // reuseMapFd(name, fd): the object uses an existing map (e.g. a pinned one) instead of
  // creating its own; libbpf checks compatibility at load. The fd is duplicated by libbpf.
  Napi::Value ReuseMapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "reuseMapFd", Need::Unloaded);
    std::string name = ArgString(info, 0, "map");
    int fd = ArgFd(info, 1, "fd");
    bpf_map* m = FindMap(env, name, "reuseMapFd");
    LogCapture cap;
    int err = bpf_map__reuse_fd(m, fd);
    if (err) ThrowErrno(env, err, "bpf_map__reuse_fd", name, cap.text());
    return env.Undefined();
  }

  Napi::Value SetPinPath(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "setPinPath", Need::Unloaded);
    std::string name = ArgString(info, 0, "map");
    bpf_map* m = FindMap(env, name, "setPinPath");
    int err;
    if (HasArg(info, 1)) {
      std::string path = ArgString(info, 1, "path");
      err = bpf_map__set_pin_path(m, path.c_str());
    } else {
      err = bpf_map__set_pin_path(m, nullptr);
    }
    if (err) ThrowErrno(env, err, "bpf_map__set_pin_path", name);
    return env.Undefined();
  }

  Napi::Value MapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "mapFd", Need::Loaded);
    std::string name = ArgString(info, 0, "map");
    int fd = bpf_map__fd(FindMap(env, name, "mapFd"));
    if (fd < 0) ThrowErrno(env, EBADF, "mapFd", "map '" + name + "' has no fd");
    return Napi::Number::New(env, fd);
  }

  Napi::Value ProgFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "progFd", Need::Loaded);
    std::string name = ArgString(info, 0, "prog");
    bpf_program* p = bpf_object__find_program_by_name(obj_, name.c_str());
    if (!p) ThrowErrno(env, ENOENT, "progFd", "no program named '" + name + "' in " + path_);
    int fd = bpf_program__fd(p);
    if (fd < 0) ThrowErrno(env, EBADF, "progFd", "program '" + name + "' was not loaded");
    return Napi::Number::New(env, fd);
  }

  // Looks a named type up, following typedefs, among the given kinds.
  static __s32 FindType(const struct btf* btf, const std::string& name, std::initializer_list<int> kinds) {
    for (int kind : kinds) {
      __s32 id = btf__find_by_name_kind(btf, name.c_str(), kind);
      if (id > 0) return id;
    }
    __s32 id = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_TYPEDEF);
    if (id <= 0) return -ENOENT;
    const struct btf_type* t = btf__type_by_id(btf, id);
    while (t && btf_is_typedef(t)) {
      id = t->type;
      t = btf__type_by_id(btf, id);
    }
    if (!t) return -ENOENT;
    for (int kind : kinds)
      if (btf_kind(t) == kind) return id;
    return -ENOENT;
  }

  // btfStruct(name) -> {name, kind, size, members: [{name, offset, bitOffset, bitSize, size}]}
  Napi::Value BtfStruct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "btfStruct", Need::Any);
    std::string name = ArgString(info, 0, "name");
    const struct btf* btf = bpf_object__btf(obj_);
    if (!btf) ThrowErrno(env, ENOENT, "btfStruct", path_ + " has no BTF");
    __s32 id = FindType(btf, name, {BTF_KIND_STRUCT, BTF_KIND_UNION});
    if (id < 0) ThrowErrno(env, ENOENT, "btfStruct", "no struct or union '" + name + "' in " + path_ + "'s BTF");
    const struct btf_type* t = btf__type_by_id(btf, id);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", name);
    o.Set("kind", btf_is_union(t) ? "union" : "struct");
    o.Set("size", Napi::Number::New(env, t->size));
    Napi::Array members = Napi::Array::New(env);
    const struct btf_member* m = btf_members(t);
    for (int i = 0; i < btf_vlen(t); i++, m++) {
      __u32 bitOff = btf_member_bit_offset(t, i);
      __u32 bitSize = btf_member_bitfield_size(t, i);
      __s64 sz = btf__resolve_size(btf, m->type);
      Napi::Object mo = Napi::Object::New(env);
      mo.Set("name", btf__name_by_offset(btf, m->name_off));
      mo.Set("offset", Napi::Number::New(env, bitOff / 8));
      mo.Set("bitOffset", Napi::Number::New(env, bitOff));
      mo.Set("bitSize", Napi::Number::New(env, bitSize));
      mo.Set("size", Napi::Number::New(env, sz < 0 ? -1 : static_cast<double>(sz)));
      members.Set(static_cast<uint32_t>(i), mo);
    }
    o.Set("members", members);
    return o;
  }

  // btfEnum(name) -> [{name, value}]
  Napi::Value BtfEnum(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Check(env, "btfEnum", Need::Any);
    std::string name = ArgString(info, 0, "name");
    const struct btf* btf = bpf_object__btf(obj_);
    if (!btf) ThrowErrno(env, ENOENT, "btfEnum", path_ + " has no BTF");
    __s32 id = FindType(btf, name, {BTF_KIND_ENUM, BTF_KIND_ENUM64});
    if (id < 0) ThrowErrno(env, ENOENT, "btfEnum", "no enum '" + name + "' in " + path_ + "'s BTF");
    const struct btf_type* t = btf__type_by_id(btf, id);
    bool isSigned = btf_kflag(t);
    Napi::Array out = Napi::Array::New(env);
    if (btf_is_enum(t)) {
      const struct btf_enum* e = btf_enum(t);
      for (int i = 0; i < btf_vlen(t); i++, e++) {
        Napi::Object eo = Napi::Object::New(env);
        eo.Set("name", btf__name_by_offset(btf, e->name_off));
        double v = isSigned ? static_cast<double>(e->val) : static_cast<double>(static_cast<__u32>(e->val));
        eo.Set("value", Napi::Number::New(env, v));
        out.Set(static_cast<uint32_t>(i), eo);
      }
    } else {
      const struct btf_enum64* e = btf_enum64(t);
      for (int i = 0; i < btf_vlen(t); i++, e++) {
        Napi::Object eo = Napi::Object::New(env);
        eo.Set("name", btf__name_by_offset(btf, e->name_off));
        __u64 u = btf_enum64_value(e);
        double v = isSigned ? static_cast<double>(static_cast<__s64>(u)) : static_cast<double>(u);
        eo.Set("value", Napi::Number::New(env, v));
        out.Set(static_cast<uint32_t>(i), eo);
      }
    }
    return out;
  }

  Napi::Value Load(const Napi::CallbackInfo& info);
};

// Loads the object into the kernel on a worker thread (the verifier can take seconds).
class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(BpfObject* self, const Napi::Object& receiver)
      : PromiseWorker(receiver, "lvs_bpf.load"), self_(self), obj_(self->obj_), path_(self->path_),
        logBuf_(&self->logBuf_) {}

 protected:
  void Run() override {
    memset(logBuf_->data(), 0, logBuf_->size());
    LogCapture cap;
    int err = bpf_object__load(obj_);
    if (err) {
      fail_.Set(err, "bpf_object__load", path_);
      fail_.log.assign(logBuf_->data(), strnlen(logBuf_->data(), logBuf_->size()));
      fail_.libbpfLog = cap.text();
    }
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
  void Done() override {
    self_->busy_ = false;
    if (fail_.failed())
      self_->loadFailed_ = true;  // libbpf refuses a second load attempt of the same object
    else
      self_->loaded_ = true;
  }

 private:
  BpfObject* self_;  // kept alive by the worker's reference to the receiver
  bpf_object* obj_;
  std::string path_;
  std::vector<char>* logBuf_;
};

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Check(env, "load", Need::Unloaded);
  } catch (const Napi::Error& e) {  // an async API rejects rather than throws
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  auto* w = new LoadWorker(this, Value());
  busy_ = true;
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitBpfObject(Napi::Env env, Napi::Object exports) {
  exports.Set("BpfObject", BpfObject::Define(env));
}

}  // namespace lvs
