{
  "targets": [
    {
      "target_name": "lvs_bpf",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/bpf_object.cc",
        "native/maps.cc",
        "native/fds.cc",
        "native/xdp.cc",
        "native/test_run.cc",
        "native/share.cc",
        "native/netlink.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [ "NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS" ],
      "cflags!": [ "-fno-exceptions" ],
      "cflags_cc!": [ "-fno-exceptions", "-std=gnu++17" ],
      "cflags_cc": [ "-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers" ],
      "libraries": [ "-lbpf", "-lelf", "-lz" ]
    }
  ]
}
