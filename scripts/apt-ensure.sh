#!/usr/bin/env bash
# Usage: bash scripts/apt-ensure.sh TAG PACKAGE...
# Installs the Debian packages (Debian 12, as root) that are not installed yet; does nothing, and
# quickly, when all are. The package lists are refreshed at most once per call: first when the
# machine has none, else only when an install from the present lists fails (an old image's lists
# name versions the mirror no longer has).
set -euo pipefail
tag=$1; shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
if [ "$(id -u)" != 0 ]; then
  printf '[%s] missing Debian packages: %s (run as root so setup can install them)\n' "$tag" "${missing[*]}" >&2; exit 3
fi
printf '[%s] installing Debian packages: %s\n' "$tag" "${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  apt-get update -qq
  install
elif ! install; then
  printf '[%s] install failed: refreshing the package lists once and retrying\n' "$tag" >&2
  apt-get update -qq
  install
fi
