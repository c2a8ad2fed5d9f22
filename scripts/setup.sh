#!/usr/bin/env bash
# One setup path for a fresh Debian 12 machine (as root) and for every later run: installs the
# Debian packages the build and tests need when missing, runs `npm install` when the lock file changed,
# mounts bpffs, and builds the BPF objects, the native addon and the TypeScript. Idempotent and
# quick when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool iproute2 ethtool
  tcpdump curl nginx-light python3 make g++ pkg-config chromium iputils-ping)

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root so setup can install them)"; exit 3
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

# Install only when package-lock.json changed since the last install. `npm install` rather than
# `npm ci`: npm 11's ci rejects this lock over msgpackr's platform-only optional packages.
stamp=node_modules/.lvs-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm install"
  npm install --no-audit --no-fund --loglevel=error
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  echo "$want" > "$stamp"
fi

log "building BPF objects"
make -s -C bpf

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
npx --no-install tsc -p tsconfig.json
