#!/usr/bin/env bash
# Bench-only setup: the tools of the end-to-end comparison (bench/e2e.ts) that the project itself
# does not need: wrk (load generator), HAProxy (TCP-mode proxy), nftables (numgen DNAT) and
# nginx-light (realserver HTTP). Installs what is missing (Debian 12, as root); idempotent.
# `npm run bench` runs the comparison only when these are present.
set -euo pipefail
PACKAGES=(wrk haproxy nftables nginx-light)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "[bench-setup] missing Debian packages: ${missing[*]} (run as root to install them)" >&2; exit 3
fi
echo "[bench-setup] installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start system-wide services; the benchmark runs its own instances only.
for s in haproxy nginx; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$s" 2>/dev/null; then systemctl stop "$s" || true; fi
done
