#!/usr/bin/env bash
# What only the tests need, on top of scripts/setup.sh (which builds and installs what the demo
# needs): Debian's chromium, which test/e2e/ops.test.ts drives through playwright-core (a
# devDependency, so npm ci installs it) to check the status page, and keepalived, whose sample
# configurations (/usr/share/doc/keepalived/samples/) the import tests translate (the daemon
# itself is never started by the tests). (BIRD 2, which the BGP and ECMP tests run, is
# setup.sh's: `lvs-xdp demo --ha` needs it too.) Installs what is missing (Debian 12, as root);
# idempotent and quick when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-ensure.sh setup-test chromium keepalived
