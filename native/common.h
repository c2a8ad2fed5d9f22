// Shared helpers for the lvs_bpf addon: errno-carrying JS errors, libbpf print capture,
// argument parsing, and a Promise-returning AsyncWorker base.
//
// Rules kept by every file in native/:
//  - C++ stays thin: no policy, only the syscall / libbpf call and its error.
//  - Worker threads only see plain C++ data (vectors, ints); JS values are read before queueing
//    and built after completion, on the main thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lvs {

// What went wrong in a native call, as plain data (safe to fill on a worker thread).
struct Failure {
  int err = 0;            // positive errno; 0 = no failure
  std::string op;         // libbpf function / syscall name, e.g. "bpf_link_create"
  std::string detail;     // extra context appended to the message (names, ifindex, ...)
  std::string log;        // kernel verifier log, when there is one
  std::string libbpfLog;  // libbpf's print output captured during the call

  bool failed() const { return err != 0; }
  void Set(int e, std::string o, std::string d = std::string()) {
    err = e < 0 ? -e : e;
    op = std::move(o);
    detail = std::move(d);
  }
};

// "EPERM", "ENOENT", ... for a positive errno ("E<number>" when unknown).
std::string ErrnoName(int err);

// Builds the JS Error for a failure: message, .code, .errno, .syscall, .log, .libbpfLog.
Napi::Error MakeError(Napi::Env env, const Failure& f);

// Throws MakeError(...) for a failed call (err may be negative or positive).
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& op,
                             const std::string& detail = std::string(),
                             const std::string& libbpfLog = std::string());

// Last `maxLines` non-empty lines of a log, for error messages.
std::string LastLines(const std::string& text, size_t maxLines);

// Captures libbpf's print output on the current thread while in scope (libbpf_set_print is
// process-wide, so the callback writes into a thread-local sink; worker threads each get theirs).
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string* prev_;
};

// Installs the libbpf print callback (once per process).
void InstallLibbpfPrint();

// ---- argument helpers (throw TypeError / RangeError) ----------------------------------------
int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* what);
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what);
bool HasArg(const Napi::CallbackInfo& info, size_t i);  // present and not undefined/null

// Optional fields of an options object.
bool OptU32(const Napi::Object& o, const char* key, uint32_t* out);
bool OptString(const Napi::Object& o, const char* key, std::string* out);

// A Buffer that takes ownership of a vector's storage (no copy for large dumps).
Napi::Buffer<uint8_t> BufferFromVector(Napi::Env env, std::vector<uint8_t>&& v);

// ---- async ----------------------------------------------------------------------------------
// AsyncWorker resolving a Promise. Subclasses implement Run() (worker thread, plain data only;
// record failures in fail_) and Result() (main thread, builds the JS value).
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name);
  // Holds a strong reference to `receiver` until the worker completes.
  PromiseWorker(const Napi::Object& receiver, const char* name);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  virtual void Done() {}  // main thread, after success or failure (clear busy flags)

  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

  Failure fail_;

 private:
  Napi::ObjectReference keep_;  // keeps a receiver (e.g. a BpfObject) alive while queued
  Napi::Promise::Deferred deferred_;
};

// ---- map shape helpers shared by maps.cc and others ----------------------------------------
struct MapShape {
  uint32_t type = 0;
  uint32_t keySize = 0;
  uint32_t valueSize = 0;   // as declared
  uint32_t maxEntries = 0;
  uint32_t flags = 0;
  size_t valueBytes = 0;    // bytes a lookup returns: per-CPU maps give roundup(v,8)*ncpus
};
bool IsPerCpuMapType(uint32_t type);
int PossibleCpus();                  // cached libbpf_num_possible_cpus(); negative errno on error
int GetMapShape(int fd, MapShape* out);  // 0 or negative errno

// ---- module pieces ---------------------------------------------------------------------------
void InitBpfObject(Napi::Env env, Napi::Object exports);
void InitMaps(Napi::Env env, Napi::Object exports);
void InitFds(Napi::Env env, Napi::Object exports);
void InitXdp(Napi::Env env, Napi::Object exports);
void InitTestRun(Napi::Env env, Napi::Object exports);
void InitShare(Napi::Env env, Napi::Object exports);
void InitNetlink(Napi::Env env, Napi::Object exports);

}  // namespace lvs
