#!/usr/bin/env bash
# What only the tests need, on top of scripts/setup.sh (which builds and installs what the demo
# needs): Debian's chromium, which test/e2e/ops.test.ts drives through playwright-core (a
# devDependency, so npm ci installs it) to check the status page, and bird2 (BIRD 2), which
# test/e2e/bgp.test.ts runs as router and director daemons for VIP announcement. Installs what
# is missing (Debian 12, as root); idempotent and quick when everything is in place. tcpdump reads
# back `lvs-xdp capture`'s pcapng (test/packet/capture.test.ts, test/e2e/share.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-ensure.sh setup-test chromium bird2 tcpdump
# Another project's XDP programs for the interface-sharing tests (test/e2e/share.test.ts).
make -s -C test/peer-xdp
