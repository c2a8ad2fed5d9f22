#include "common.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace lvs {

std::string ErrnoName(int err) {
  if (err < 0) err = -err;
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case EBADFD: return "EBADFD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case EOVERFLOW: return "EOVERFLOW";
    case EBADMSG: return "EBADMSG";
    case EOPNOTSUPP: return "EOPNOTSUPP";  // == ENOTSUP on Linux
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EALREADY: return "EALREADY";
    case ECANCELED: return "ECANCELED";
    case 524: return "ENOTSUPP";  // kernel-internal "operation not supported" (bpf uses it)
    default: return "E" + std::to_string(err);
  }
}

static std::string StrError(int err) {
  if (err == 524) return "Operation not supported by the kernel (ENOTSUPP)";
  char buf[256];
  // GNU strerror_r returns a char*, possibly not buf.
  return std::string(strerror_r(err, buf, sizeof buf));
}

std::string LastLines(const std::string& text, size_t maxLines) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
    start = nl + 1;
  }
  std::string out;
  size_t from = lines.size() > maxLines ? lines.size() - maxLines : 0;
  for (size_t i = from; i < lines.size(); i++) {
    if (!out.empty()) out += '\n';
    out += lines[i];
  }
  return out;
}

Napi::Error MakeError(Napi::Env env, const Failure& f) {
  std::string msg = f.op + ": " + StrError(f.err);
  if (!f.detail.empty()) msg += " (" + f.detail + ")";
  if (!f.log.empty()) {
    msg += "\nverifier log (last lines):\n" + LastLines(f.log, 12);
  } else if (!f.libbpfLog.empty()) {
    msg += "\n" + LastLines(f.libbpfLog, 8);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  Napi::Object o = e.Value();
  o.Set("code", ErrnoName(f.err));
  o.Set("errno", Napi::Number::New(env, f.err));
  o.Set("syscall", f.op);
  if (!f.log.empty()) o.Set("log", f.log);
  if (!f.libbpfLog.empty()) o.Set("libbpfLog", f.libbpfLog);
  return e;
}

void ThrowErrno(Napi::Env env, int err, const std::string& op, const std::string& detail,
                const std::string& libbpfLog) {
  Failure f;
  f.Set(err == 0 ? EINVAL : err, op, detail);
  f.libbpfLog = libbpfLog;
  throw MakeError(env, f);
}

// ---- libbpf print capture ---------------------------------------------------------------------
static thread_local std::string* t_sink = nullptr;

static int PrintToSink(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (!t_sink) return 0;  // not inside a captured call: stay quiet (libbpf's default is stderr)
  if (level == LIBBPF_DEBUG) return 0;
  char buf[2048];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(buf, sizeof buf, fmt, copy);
  va_end(copy);
  if (n < 0) return n;
  if (static_cast<size_t>(n) < sizeof buf) {
    t_sink->append(buf, n);
  } else {
    std::string big(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(&big[0], big.size(), fmt, args);
    big.resize(static_cast<size_t>(n));
    t_sink->append(big);
  }
  // Bound the capture: keep the tail, which holds the error.
  const size_t kMax = 1 << 20;
  if (t_sink->size() > kMax) t_sink->erase(0, t_sink->size() - kMax / 2);
  return n;
}

void InstallLibbpfPrint() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(PrintToSink); });
}

LogCapture::LogCapture() : prev_(t_sink) { t_sink = &text_; }
LogCapture::~LogCapture() { t_sink = prev_; }

// ---- arguments --------------------------------------------------------------------------------
bool HasArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull();
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a file descriptor number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 0x7fffffff) || d != static_cast<double>(static_cast<int>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " is not a valid file descriptor");
  return static_cast<int>(d);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an unsigned 32-bit integer");
  return static_cast<uint32_t>(d);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

bool OptU32(const Napi::Object& o, const char* key, uint32_t* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an unsigned 32-bit integer");
  *out = static_cast<uint32_t>(d);
  return true;
}

bool OptString(const Napi::Object& o, const char* key, std::string* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

Napi::Buffer<uint8_t> BufferFromVector(Napi::Env env, std::vector<uint8_t>&& v) {
  if (v.size() < 4096) return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size());
  auto* owned = new std::vector<uint8_t>(std::move(v));
  return Napi::Buffer<uint8_t>::New(env, owned->data(), owned->size(),
                                    [](Napi::Env, uint8_t*, std::vector<uint8_t>* p) { delete p; },
                                    owned);
}

// ---- PromiseWorker ----------------------------------------------------------------------------
PromiseWorker::PromiseWorker(Napi::Env env, const char* name)
    : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

PromiseWorker::PromiseWorker(const Napi::Object& receiver, const char* name)
    : Napi::AsyncWorker(receiver.Env(), name),
      keep_(Napi::Persistent(receiver)),
      deferred_(Napi::Promise::Deferred::New(receiver.Env())) {}

void PromiseWorker::Execute() { Run(); }

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Done();
  if (fail_.failed()) {
    deferred_.Reject(MakeError(env, fail_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  Done();
  deferred_.Reject(e.Value());
}

// ---- map shapes -------------------------------------------------------------------------------
bool IsPerCpuMapType(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

int PossibleCpus() {
  static std::atomic<int> cached{0};  // every thread computes the same value
  int n = cached.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = libbpf_num_possible_cpus();
    if (n > 0) cached.store(n, std::memory_order_relaxed);
  }
  return n;
}

int GetMapShape(int fd, MapShape* out) {
  struct bpf_map_info info;
  memset(&info, 0, sizeof info);
  __u32 len = sizeof info;
  int err = bpf_obj_get_info_by_fd(fd, &info, &len);
  if (err) return err < 0 ? err : -EINVAL;
  out->type = info.type;
  out->keySize = info.key_size;
  out->valueSize = info.value_size;
  out->maxEntries = info.max_entries;
  out->flags = info.map_flags;
  out->valueBytes = info.value_size;
  if (IsPerCpuMapType(info.type)) {
    int n = PossibleCpus();
    if (n <= 0) return n < 0 ? n : -EINVAL;
    out->valueBytes = ((static_cast<size_t>(info.value_size) + 7) / 8) * 8 * static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace lvs
