// Map operations on any map fd. Every call checks buffer sizes against the map's own info first
// (one BPF_OBJ_GET_INFO_BY_FD), so a short JS buffer can never make the kernel read past it.
//
// Batch operations fall back to one-element syscalls when the kernel has no batch op for the
// map type: it answers ENOTSUPP (524) for e.g. ARRAY_OF_MAPS / HASH_OF_MAPS lookup/update batch
// and PROG_ARRAY, and EINVAL/EOPNOTSUPP in some other cases (e.g. delete batch on an ARRAY). The
// fallback for dumps walks keys with BPF_MAP_GET_NEXT_KEY (not atomic: a hash entry deleted during
// the walk can restart it, so a dump stops at max_entries elements).
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common.h"

namespace lvs {
namespace {

bool BatchUnsupported(int err) {
  err = err < 0 ? -err : err;
  return err == 524 /* ENOTSUPP */ || err == EOPNOTSUPP || err == EINVAL;
}

const void* KeyPtr(const uint8_t* p, uint32_t keySize) { return keySize ? p : nullptr; }

MapShape ShapeOrThrow(Napi::Env env, int fd, const char* op) {
  MapShape s;
  int err = GetMapShape(fd, &s);
  if (err) ThrowErrno(env, err, "bpf_obj_get_info_by_fd", std::string(op) + ", fd " + std::to_string(fd));
  return s;
}

void CheckLen(Napi::Env env, const char* op, const char* what, size_t got, size_t want) {
  if (got != want)
    throw Napi::RangeError::New(env, std::string(op) + ": " + what + " is " + std::to_string(got) +
                                         " bytes, the map's is " + std::to_string(want));
}

// ---- whole-map dump ---------------------------------------------------------------------------
struct Dump {
  std::vector<uint8_t> keys, values;
  uint32_t count = 0;
  MapShape shape;
  bool batched = true;
};

void DumpByNextKey(int fd, Dump* d, Failure* f) {
  const MapShape& s = d->shape;
  d->batched = false;
  d->keys.clear();
  d->values.clear();
  d->count = 0;
  std::vector<uint8_t> cur(s.keySize), next(s.keySize), val(s.valueBytes);
  bool first = true;
  while (d->count < s.maxEntries) {
    int err = bpf_map_get_next_key(fd, first ? nullptr : cur.data(), next.data());
    if (err == -ENOENT) break;
    if (err) { f->Set(err, "bpf_map_get_next_key", "fd " + std::to_string(fd)); return; }
    first = false;
    cur.swap(next);
    err = bpf_map_lookup_elem(fd, cur.data(), val.data());
    if (err == -ENOENT) continue;  // deleted meanwhile, or an empty map-in-map slot
    if (err) { f->Set(err, "bpf_map_lookup_elem", "fd " + std::to_string(fd)); return; }
    d->keys.insert(d->keys.end(), cur.begin(), cur.end());
    d->values.insert(d->values.end(), val.begin(), val.end());
    d->count++;
  }
}

void DumpMap(int fd, uint32_t batchSize, Dump* d, Failure* f) {
  int err = GetMapShape(fd, &d->shape);
  if (err) { f->Set(err, "bpf_obj_get_info_by_fd", "fd " + std::to_string(fd)); return; }
  const MapShape& s = d->shape;
  if (s.keySize == 0) { f->Set(EINVAL, "mapLookupBatch", "map has no keys (queue/stack)"); return; }
  if (batchSize == 0) batchSize = 256;
  batchSize = std::min(batchSize, std::max<uint32_t>(s.maxEntries, 1));
  size_t tokLen = std::max<size_t>(s.keySize, 8);
  std::vector<uint8_t> inTok(tokLen), outTok(tokLen);
  bool first = true;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (;;) {
    uint32_t n = batchSize;
    d->keys.resize(static_cast<size_t>(d->count + n) * s.keySize);
    d->values.resize(static_cast<size_t>(d->count + n) * s.valueBytes);
    err = bpf_map_lookup_batch(fd, first ? nullptr : inTok.data(), outTok.data(),
                               d->keys.data() + static_cast<size_t>(d->count) * s.keySize,
                               d->values.data() + static_cast<size_t>(d->count) * s.valueBytes, &n, &opts);
    if (err == 0 || err == -ENOENT) {
      d->count += n;
      if (err == -ENOENT) break;  // that was the last batch
      inTok.swap(outTok);
      first = false;
      continue;
    }
    if (err == -ENOSPC && batchSize < (1u << 20)) {  // a hash bucket bigger than the batch
      batchSize *= 2;
      continue;
    }
    if (first && d->count == 0 && BatchUnsupported(err)) {
      DumpByNextKey(fd, d, f);
      return;
    }
    f->Set(err, "bpf_map_lookup_batch", "fd " + std::to_string(fd));
    return;
  }
  d->keys.resize(static_cast<size_t>(d->count) * s.keySize);
  d->values.resize(static_cast<size_t>(d->count) * s.valueBytes);
}

Napi::Value DumpToJs(Napi::Env env, Dump&& d) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", Napi::Number::New(env, d.count));
  o.Set("keySize", Napi::Number::New(env, d.shape.keySize));
  o.Set("valueSize", Napi::Number::New(env, static_cast<double>(d.shape.valueBytes)));
  o.Set("batched", Napi::Boolean::New(env, d.batched));
  o.Set("keys", BufferFromVector(env, std::move(d.keys)));
  o.Set("values", BufferFromVector(env, std::move(d.values)));
  return o;
}

// ---- batch update / delete --------------------------------------------------------------------
// Both report how many elements were processed; on failure that count says where it stopped.
uint32_t UpdateMany(int fd, const MapShape& s, const uint8_t* keys, const uint8_t* values, uint32_t count,
                    uint64_t flags, Failure* f, bool* batched) {
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = flags;
  uint32_t n = count;
  *batched = true;
  int err = count ? bpf_map_update_batch(fd, keys, values, &n, &opts) : 0;
  if (!err) return count;
  // The kernel leaves count untouched when it has no batch op, and sets it to the number done
  // when an element fails: fall back only when nothing was done.
  if (!((n == 0 || n == count) && BatchUnsupported(err))) {
    f->Set(err, "bpf_map_update_batch", "fd " + std::to_string(fd) + ", " + std::to_string(n) + " of " +
                                            std::to_string(count) + " done");
    return n;
  }
  *batched = false;
  for (uint32_t i = 0; i < count; i++) {
    err = bpf_map_update_elem(fd, KeyPtr(keys + static_cast<size_t>(i) * s.keySize, s.keySize),
                              values + static_cast<size_t>(i) * s.valueBytes, flags);
    if (err) {
      f->Set(err, "bpf_map_update_elem", "fd " + std::to_string(fd) + ", element " + std::to_string(i));
      return i;
    }
  }
  return count;
}

// Deletes the keys that exist; missing keys are skipped. Returns how many were deleted.
uint32_t DeleteMany(int fd, const MapShape& s, const uint8_t* keys, uint32_t count, Failure* f, bool* batched) {
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  uint32_t deleted = 0, pos = 0;
  *batched = true;
  while (pos < count) {
    uint32_t n = count - pos;
    int err = bpf_map_delete_batch(fd, keys + static_cast<size_t>(pos) * s.keySize, &n, &opts);
    if (!err) return deleted + n;
    if (err == -ENOENT) {  // stopped at a missing key: skip it, keep going
      deleted += n;
      pos += n + 1;
      continue;
    }
    if (pos == 0 && (n == 0 || n == count) && BatchUnsupported(err)) break;
    f->Set(err, "bpf_map_delete_batch", "fd " + std::to_string(fd));
    return deleted + n;
  }
  if (pos >= count) return deleted;
  *batched = false;
  for (uint32_t i = 0; i < count; i++) {
    int err = bpf_map_delete_elem(fd, keys + static_cast<size_t>(i) * s.keySize);
    if (err == -ENOENT) continue;
    if (err) {
      f->Set(err, "bpf_map_delete_elem", "fd " + std::to_string(fd) + ", element " + std::to_string(i));
      return deleted;
    }
    deleted++;
  }
  return deleted;
}

// ---- sync functions ---------------------------------------------------------------------------

// mapCreate({type, name?, keySize, valueSize, maxEntries, flags?, innerMapFd?, numaNode?, mapExtra?})
Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "mapCreate: options object expected");
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t type = 0, keySize = 0, valueSize = 0, maxEntries = 0, flags = 0, inner = 0, numa = 0, extra = 0;
  if (!OptU32(o, "type", &type)) throw Napi::TypeError::New(env, "mapCreate: type is required");
  OptU32(o, "keySize", &keySize);
  OptU32(o, "valueSize", &valueSize);
  if (!OptU32(o, "maxEntries", &maxEntries)) throw Napi::TypeError::New(env, "mapCreate: maxEntries is required");
  OptU32(o, "flags", &flags);
  std::string name;
  OptString(o, "name", &name);
  LIBBPF_OPTS(bpf_map_create_opts, opts);
  opts.map_flags = flags;
  if (OptU32(o, "innerMapFd", &inner)) opts.inner_map_fd = inner;
  if (OptU32(o, "numaNode", &numa)) opts.numa_node = numa;
  if (OptU32(o, "mapExtra", &extra)) opts.map_extra = extra;
  LogCapture cap;
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(type), name.empty() ? nullptr : name.c_str(), keySize,
                          valueSize, maxEntries, &opts);
  if (fd < 0)
    ThrowErrno(env, fd, "bpf_map_create",
               "type " + std::to_string(type) + (name.empty() ? "" : ", name '" + name + "'"), cap.text());
  return Napi::Number::New(env, fd);
}

// mapLookup(fd, key) -> Buffer | null
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapLookup");
  const uint8_t* key = nullptr;
  if (s.keySize) {
    Napi::Buffer<uint8_t> k = ArgBuffer(info, 1, "key");
    CheckLen(env, "mapLookup", "key", k.Length(), s.keySize);
    key = k.Data();
  }
  std::vector<uint8_t> val(s.valueBytes);
  int err = bpf_map_lookup_elem(fd, key, val.data());
  if (err == -ENOENT) return env.Null();
  if (err) ThrowErrno(env, err, "bpf_map_lookup_elem", "fd " + std::to_string(fd));
  return Napi::Buffer<uint8_t>::Copy(env, val.data(), val.size());
}

// mapUpdate(fd, key, value, flags = BPF_ANY)
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapUpdate");
  const uint8_t* key = nullptr;
  if (s.keySize) {
    Napi::Buffer<uint8_t> k = ArgBuffer(info, 1, "key");
    CheckLen(env, "mapUpdate", "key", k.Length(), s.keySize);
    key = k.Data();
  }
  Napi::Buffer<uint8_t> v = ArgBuffer(info, 2, "value");
  CheckLen(env, "mapUpdate", "value", v.Length(), s.valueBytes);
  uint32_t flags = HasArg(info, 3) ? ArgU32(info, 3, "flags") : static_cast<uint32_t>(BPF_ANY);
  int err = bpf_map_update_elem(fd, key, v.Data(), flags);
  if (err) ThrowErrno(env, err, "bpf_map_update_elem", "fd " + std::to_string(fd));
  return env.Undefined();
}

// mapDelete(fd, key) -> boolean (false when the key was not there)
Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapDelete");
  Napi::Buffer<uint8_t> k = ArgBuffer(info, 1, "key");
  CheckLen(env, "mapDelete", "key", k.Length(), s.keySize);
  int err = bpf_map_delete_elem(fd, k.Data());
  if (err == -ENOENT) return Napi::Boolean::New(env, false);
  if (err) ThrowErrno(env, err, "bpf_map_delete_elem", "fd " + std::to_string(fd));
  return Napi::Boolean::New(env, true);
}

// mapNextKey(fd, key | null) -> Buffer | null (null: no more keys)
Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapNextKey");
  const uint8_t* key = nullptr;
  if (HasArg(info, 1)) {
    Napi::Buffer<uint8_t> k = ArgBuffer(info, 1, "key");
    CheckLen(env, "mapNextKey", "key", k.Length(), s.keySize);
    key = k.Data();
  }
  std::vector<uint8_t> next(s.keySize);
  int err = bpf_map_get_next_key(fd, key, next.data());
  if (err == -ENOENT) return env.Null();
  if (err) ThrowErrno(env, err, "bpf_map_get_next_key", "fd " + std::to_string(fd));
  return Napi::Buffer<uint8_t>::Copy(env, next.data(), next.size());
}

uint32_t BatchSizeArg(const Napi::CallbackInfo& info, size_t i) {
  uint32_t b = 0;
  if (HasArg(info, i)) {
    if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "options object expected");
    OptU32(info[i].As<Napi::Object>(), "batchSize", &b);
  }
  return b;
}

// mapLookupBatch(fd, {batchSize?}) -> {count, keySize, valueSize, keys, values, batched}
Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  uint32_t batch = BatchSizeArg(info, 1);
  Dump d;
  Failure f;
  DumpMap(fd, batch, &d, &f);
  if (f.failed()) throw MakeError(env, f);
  return DumpToJs(env, std::move(d));
}

// Reads (keys, values) concatenated buffers for the batch writers; returns the element count.
uint32_t CountFor(Napi::Env env, const char* op, const MapShape& s, size_t keyBytes, const size_t* valueBytes) {
  if (s.keySize == 0 || keyBytes % s.keySize)
    throw Napi::RangeError::New(env, std::string(op) + ": keys length " + std::to_string(keyBytes) +
                                         " is not a multiple of key_size " + std::to_string(s.keySize));
  uint32_t count = static_cast<uint32_t>(keyBytes / s.keySize);
  if (valueBytes) CheckLen(env, op, "values", *valueBytes, static_cast<size_t>(count) * s.valueBytes);
  return count;
}

Napi::Object CountResult(Napi::Env env, uint32_t n, bool batched) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", Napi::Number::New(env, n));
  o.Set("batched", Napi::Boolean::New(env, batched));
  return o;
}

// mapUpdateBatch(fd, keys, values, flags = BPF_ANY) -> {count, batched}
Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapUpdateBatch");
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 1, "keys");
  Napi::Buffer<uint8_t> values = ArgBuffer(info, 2, "values");
  uint32_t flags = HasArg(info, 3) ? ArgU32(info, 3, "flags") : static_cast<uint32_t>(BPF_ANY);
  size_t vlen = values.Length();
  uint32_t count = CountFor(env, "mapUpdateBatch", s, keys.Length(), &vlen);
  Failure f;
  bool batched;
  uint32_t n = UpdateMany(fd, s, keys.Data(), values.Data(), count, flags, &f, &batched);
  if (f.failed()) throw MakeError(env, f);
  return CountResult(env, n, batched);
}

// mapDeleteBatch(fd, keys) -> {count (deleted), batched}
Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapDeleteBatch");
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 1, "keys");
  uint32_t count = CountFor(env, "mapDeleteBatch", s, keys.Length(), nullptr);
  Failure f;
  bool batched;
  uint32_t n = DeleteMany(fd, s, keys.Data(), count, &f, &batched);
  if (f.failed()) throw MakeError(env, f);
  return CountResult(env, n, batched);
}

// ---- async variants (inputs copied into plain vectors before queueing) -----------------------
class DumpWorker : public PromiseWorker {
 public:
  DumpWorker(Napi::Env env, int fd, uint32_t batch) : PromiseWorker(env, "lvs_bpf.mapLookupBatch"), fd_(fd), batch_(batch) {}

 protected:
  void Run() override { DumpMap(fd_, batch_, &d_, &fail_); }
  Napi::Value Result(Napi::Env env) override { return DumpToJs(env, std::move(d_)); }

 private:
  int fd_;
  uint32_t batch_;
  Dump d_;
};

class WriteWorker : public PromiseWorker {
 public:
  WriteWorker(Napi::Env env, bool del, int fd, const MapShape& s, std::vector<uint8_t> keys,
              std::vector<uint8_t> values, uint32_t count, uint32_t flags)
      : PromiseWorker(env, del ? "lvs_bpf.mapDeleteBatch" : "lvs_bpf.mapUpdateBatch"), del_(del), fd_(fd), s_(s),
        keys_(std::move(keys)), values_(std::move(values)), count_(count), flags_(flags) {}

 protected:
  void Run() override {
    n_ = del_ ? DeleteMany(fd_, s_, keys_.data(), count_, &fail_, &batched_)
              : UpdateMany(fd_, s_, keys_.data(), values_.data(), count_, flags_, &fail_, &batched_);
  }
  Napi::Value Result(Napi::Env env) override { return CountResult(env, n_, batched_); }

 private:
  bool del_;
  int fd_;
  MapShape s_;
  std::vector<uint8_t> keys_, values_;
  uint32_t count_, flags_;
  uint32_t n_ = 0;
  bool batched_ = true;
};

Napi::Value MapLookupBatchAsync(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  auto* w = new DumpWorker(info.Env(), fd, BatchSizeArg(info, 1));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value MapUpdateBatchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapUpdateBatchAsync");
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 1, "keys");
  Napi::Buffer<uint8_t> values = ArgBuffer(info, 2, "values");
  uint32_t flags = HasArg(info, 3) ? ArgU32(info, 3, "flags") : static_cast<uint32_t>(BPF_ANY);
  size_t vlen = values.Length();
  uint32_t count = CountFor(env, "mapUpdateBatchAsync", s, keys.Length(), &vlen);
  auto* w = new WriteWorker(env, false, fd, s, std::vector<uint8_t>(keys.Data(), keys.Data() + keys.Length()),
                            std::vector<uint8_t>(values.Data(), values.Data() + values.Length()), count, flags);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value MapDeleteBatchAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  MapShape s = ShapeOrThrow(env, fd, "mapDeleteBatchAsync");
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 1, "keys");
  uint32_t count = CountFor(env, "mapDeleteBatchAsync", s, keys.Length(), nullptr);
  auto* w = new WriteWorker(env, true, fd, s, std::vector<uint8_t>(keys.Data(), keys.Data() + keys.Length()), {},
                            count, 0);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapCreate", Napi::Function::New<MapCreate>(env, "mapCreate"));
  exports.Set("mapLookup", Napi::Function::New<MapLookup>(env, "mapLookup"));
  exports.Set("mapUpdate", Napi::Function::New<MapUpdate>(env, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New<MapDelete>(env, "mapDelete"));
  exports.Set("mapNextKey", Napi::Function::New<MapNextKey>(env, "mapNextKey"));
  exports.Set("mapLookupBatch", Napi::Function::New<MapLookupBatch>(env, "mapLookupBatch"));
  exports.Set("mapUpdateBatch", Napi::Function::New<MapUpdateBatch>(env, "mapUpdateBatch"));
  exports.Set("mapDeleteBatch", Napi::Function::New<MapDeleteBatch>(env, "mapDeleteBatch"));
  exports.Set("mapLookupBatchAsync", Napi::Function::New<MapLookupBatchAsync>(env, "mapLookupBatchAsync"));
  exports.Set("mapUpdateBatchAsync", Napi::Function::New<MapUpdateBatchAsync>(env, "mapUpdateBatchAsync"));
  exports.Set("mapDeleteBatchAsync", Napi::Function::New<MapDeleteBatchAsync>(env, "mapDeleteBatchAsync"));
}

}  // namespace lvs
