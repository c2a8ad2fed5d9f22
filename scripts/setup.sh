#!/usr/bin/env bash
# What building and the demo need, on a fresh Debian 12 machine (as root) and on every later run:
# installs the missing Debian packages, runs `npm ci` when package-lock.json changed since the last
# install, mounts bpffs, and builds the BPF objects, the native addon and the TypeScript (and
# removes compiled files whose source is gone). Idempotent and quick when everything is in place.
# `--build-only` skips the installs. What only the tests need is scripts/setup-test.sh's; the
# benchmark's own tools are scripts/bench-setup.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
[ "${1:-}" = --build-only ] && build_only=1

# Build: clang (BPF objects), libbpf/libelf/zlib headers, make, g++ and python3 (node-gyp; python3
# also runs src/ops/path-probe.py), bpftool (BTF checks, detach). Run: iproute2, ethtool, curl and
# ping (the director's neighbour resolution, the demo's lab and its checks); bird2 (BIRD 2: VIP
# announcement, `lvs-xdp demo --ha`'s router and directors); nsenter and mount are util-linux,
# always installed.
APT_PACKAGES=(clang libbpf-dev libelf-dev zlib1g-dev make g++ python3 bpftool
  iproute2 ethtool curl iputils-ping bird2)

log() { printf '[setup] %s\n' "$*" >&2; }

if ((!build_only)); then
  bash scripts/apt-ensure.sh setup "${APT_PACKAGES[@]}"

  if [ "$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then
    log "mounting bpffs on /sys/fs/bpf"
    mount -t bpf bpf /sys/fs/bpf
  fi

  # `npm ci` only when package-lock.json changed since the last install: it installs exactly the
  # lock (refusing a lock out of step with package.json) and never rewrites it. A node_modules
  # linked from another checkout is that checkout's to install.
  stamp=node_modules/.lvs-lock-sha
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    if [ -L node_modules ]; then
      log "node_modules links to $(readlink node_modules), installed from another package-lock.json: run npm ci there"
    else
      log "npm ci"
      nodedir_env=()
      [ -f /usr/include/node/node_api.h ] && nodedir_env=(npm_config_nodedir=/usr)
      env "${nodedir_env[@]}" npm ci --no-audit --no-fund --loglevel=error >/dev/null
      echo "$want" > "$stamp"
    fi
  fi
fi

log "building BPF objects"
make -s -C bpf
# The repeat wrapper and the live-rate sender `lvs-xdp bench` uses (shipped with the package).
make -s -C bench/bpf wrap.o live.o

log "generating ABI names from bpf/lvs_abi.h"
node scripts/gen-abi.mjs

if [ -f binding.gyp ]; then
  addon=build/Release/lvs_bpf.node
  if [ ! -f "$addon" ] || [ -n "$(find native binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
    log "building native addon"
    nodedir_args=()
    [ -f /usr/include/node/node_api.h ] && nodedir_args=(--nodedir=/usr)
    npx --no-install node-gyp rebuild "${nodedir_args[@]}" --loglevel=error >/dev/null
  fi
fi

log "compiling TypeScript"
# Two passes: the JavaScript without comments (V8 keeps every loaded module's source text
# resident: about 0.5 MiB of a small box's `run`, README "Sizes and memory cost"), then the
# declarations with theirs, for editors and library users.
npx --no-install tsc -p tsconfig.json --removeComments --declaration false
npx --no-install tsc -p tsconfig.json --emitDeclarationOnly
# tsc never deletes: the output of a deleted or moved .ts would stay importable, and a deleted
# test would keep running from dist/.
if [ -d dist ]; then
  while IFS= read -r -d '' out; do
    rel=${out#dist/}
    src=${rel%.map}; src=${src%.js}; src=${src%.d.ts}
    [ -f "$src.ts" ] || rm -f -- "$out"
  done < <(find dist -type f \( -name '*.js' -o -name '*.js.map' -o -name '*.d.ts' \) -print0)
  find dist -mindepth 1 -type d -empty -delete
fi
log "bundling the CLI"
node scripts/bundle.mjs
