// BPF_PROG_TEST_RUN: runs a loaded program on a frame given from user space. Used by packet tests
// (output frame and verdict) and benchmarks (kernel-measured duration per run).
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace lvs {
namespace {

struct RunArgs {
  int progFd = -1;
  std::vector<uint8_t> data;  // owned copy (async) ...
  const uint8_t* dataPtr = nullptr;  // ... or the JS buffer's bytes (sync: main thread only)
  size_t dataLen = 0;
  uint32_t repeat = 1;
  uint32_t flags = 0;
  uint32_t outSize = 0;  // 0: input length + 4096 (room for pushed headers)
  uint32_t batchSize = 0;
  bool hasCtx = false;
  struct xdp_md ctx;
};

struct RunResult {
  uint32_t retval = 0;
  uint32_t duration = 0;
  std::vector<uint8_t> out;
};

bool Live(const RunArgs& a) { return (a.flags & BPF_F_TEST_XDP_LIVE_FRAMES) != 0; }

void Prepare(RunArgs& a, struct bpf_test_run_opts& opts, struct xdp_md& ctx) {
  opts.data_in = a.dataPtr;
  opts.data_size_in = static_cast<__u32>(a.dataLen);
  opts.repeat = static_cast<int>(a.repeat);
  opts.flags = a.flags;
  opts.batch_size = a.batchSize;
  if (a.hasCtx) {
    ctx = a.ctx;
    ctx.data = 0;
    ctx.data_meta = 0;
    ctx.data_end = static_cast<__u32>(a.dataLen);
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof ctx;
  }
}

void DoRun(RunArgs& a, RunResult* r, Failure* f) {
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  struct xdp_md ctx;
  Prepare(a, opts, ctx);
  // Live-frames mode sends the frames out and returns no data.
  if (!Live(a)) {
    r->out.resize(a.outSize ? a.outSize : a.dataLen + 4096);
    opts.data_out = r->out.data();
    opts.data_size_out = static_cast<__u32>(r->out.size());
  }
  int err = bpf_prog_test_run_opts(a.progFd, &opts);
  if (err) {
    f->Set(err, "bpf_prog_test_run_opts", "prog fd " + std::to_string(a.progFd));
    return;
  }
  r->retval = opts.retval;
  r->duration = opts.duration;
  r->out.resize(Live(a) ? 0 : opts.data_size_out);
}

// Runs `count` single repetitions; the kernel copies data_in afresh each call, so programs that
// grow or rewrite the frame always start from the original. Output data is not copied back.
void DoRunEach(RunArgs& a, uint32_t count, std::vector<double>* durations, uint32_t* lastRetval, Failure* f) {
  durations->resize(count);
  for (uint32_t i = 0; i < count; i++) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    struct xdp_md ctx;
    Prepare(a, opts, ctx);
    opts.repeat = 1;
    int err = bpf_prog_test_run_opts(a.progFd, &opts);
    if (err) {
      f->Set(err, "bpf_prog_test_run_opts", "prog fd " + std::to_string(a.progFd) + ", run " + std::to_string(i));
      return;
    }
    (*durations)[i] = opts.duration;
    *lastRetval = opts.retval;
  }
}

// Reads {repeat?, flags?, dataSizeOut?, ingressIfindex?, rxQueueIndex?, batchSize?}.
void ReadOpts(const Napi::CallbackInfo& info, size_t i, RunArgs* a) {
  if (!HasArg(info, i)) return;
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "options object expected");
  Napi::Object o = info[i].As<Napi::Object>();
  OptU32(o, "repeat", &a->repeat);
  OptU32(o, "flags", &a->flags);
  OptU32(o, "dataSizeOut", &a->outSize);
  OptU32(o, "batchSize", &a->batchSize);
  memset(&a->ctx, 0, sizeof a->ctx);
  uint32_t v;
  if (OptU32(o, "ingressIfindex", &v)) { a->ctx.ingress_ifindex = v; a->hasCtx = true; }
  if (OptU32(o, "rxQueueIndex", &v)) { a->ctx.rx_queue_index = v; a->hasCtx = true; }
}

// Sync args point at the JS Buffer directly; async args copy it first.
RunArgs ReadArgs(const Napi::CallbackInfo& info, size_t optsIndex, bool copy) {
  RunArgs a;
  a.progFd = ArgFd(info, 0, "progFd");
  Napi::Buffer<uint8_t> data = ArgBuffer(info, 1, "data");
  if (copy) {
    a.data.assign(data.Data(), data.Data() + data.Length());
    a.dataPtr = a.data.data();
  } else {
    a.dataPtr = data.Data();
  }
  a.dataLen = data.Length();
  ReadOpts(info, optsIndex, &a);
  return a;
}

Napi::Value ResultToJs(Napi::Env env, RunResult&& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("retval", Napi::Number::New(env, r.retval));
  o.Set("duration", Napi::Number::New(env, r.duration));
  o.Set("data", BufferFromVector(env, std::move(r.out)));
  return o;
}

Napi::Value DurationsToJs(Napi::Env env, const std::vector<double>& d) {
  Napi::Float64Array arr = Napi::Float64Array::New(env, d.size());
  if (!d.empty()) memcpy(arr.Data(), d.data(), d.size() * sizeof(double));
  return arr;
}

// progTestRun(progFd, data, opts?) -> {retval, duration, data}
Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RunArgs a = ReadArgs(info, 2, false);
  RunResult r;
  Failure f;
  DoRun(a, &r, &f);
  if (f.failed()) throw MakeError(env, f);
  return ResultToJs(env, std::move(r));
}

// progTestRunEach(progFd, data, count, opts?) -> Float64Array of per-run durations (ns)
Napi::Value ProgTestRunEach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RunArgs a = ReadArgs(info, 3, false);
  uint32_t count = ArgU32(info, 2, "count");
  std::vector<double> d;
  uint32_t last = 0;
  Failure f;
  DoRunEach(a, count, &d, &last, &f);
  if (f.failed()) throw MakeError(env, f);
  return DurationsToJs(env, d);
}

class RunWorker : public PromiseWorker {
 public:
  RunWorker(Napi::Env env, RunArgs a, uint32_t each)
      : PromiseWorker(env, "lvs_bpf.progTestRun"), a_(std::move(a)), each_(each) {
    a_.dataPtr = a_.data.data();  // the vector moved: point at its new home
  }

 protected:
  void Run() override {
    if (each_) DoRunEach(a_, each_, &durations_, &last_, &fail_);
    else DoRun(a_, &r_, &fail_);
  }
  Napi::Value Result(Napi::Env env) override {
    return each_ ? DurationsToJs(env, durations_) : ResultToJs(env, std::move(r_));
  }

 private:
  RunArgs a_;
  uint32_t each_;
  RunResult r_;
  std::vector<double> durations_;
  uint32_t last_ = 0;
};

Napi::Value ProgTestRunAsync(const Napi::CallbackInfo& info) {
  auto* w = new RunWorker(info.Env(), ReadArgs(info, 2, true), 0);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value ProgTestRunEachAsync(const Napi::CallbackInfo& info) {
  RunArgs a = ReadArgs(info, 3, true);
  uint32_t count = ArgU32(info, 2, "count");
  if (count == 0) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(info.Env());
    d.Resolve(Napi::Float64Array::New(info.Env(), 0));
    return d.Promise();
  }
  auto* w = new RunWorker(info.Env(), std::move(a), count);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitTestRun(Napi::Env env, Napi::Object exports) {
  exports.Set("progTestRun", Napi::Function::New<ProgTestRun>(env, "progTestRun"));
  exports.Set("progTestRunAsync", Napi::Function::New<ProgTestRunAsync>(env, "progTestRunAsync"));
  exports.Set("progTestRunEach", Napi::Function::New<ProgTestRunEach>(env, "progTestRunEach"));
  exports.Set("progTestRunEachAsync", Napi::Function::New<ProgTestRunEachAsync>(env, "progTestRunEachAsync"));
}

}  // namespace lvs
