// Module entry point of lvs_bpf.node: a thin layer over libbpf (see native/common.h for the rules).
#include "common.h"

namespace lvs {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  InitBpfObject(env, exports);
  InitMaps(env, exports);
  InitFds(env, exports);
  InitXdp(env, exports);
  InitTestRun(env, exports);
  InitShare(env, exports);
  InitNetlink(env, exports);
  return exports;
}

}  // namespace lvs

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lvs::Init(env, exports); }

NODE_API_MODULE(lvs_bpf, InitModule)
