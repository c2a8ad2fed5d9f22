#!/usr/bin/env bash
# What only the tests need, on top of scripts/setup.sh (which builds and installs what the demo
# needs): Debian's chromium, which test/e2e/ops.test.ts drives through playwright-core (a
# devDependency, so npm ci installs it) to check the status page; keepalived, whose sample
# configurations (/usr/share/doc/keepalived/samples/) the import tests translate (the daemon
# itself is never started by the tests); and promtool, which test/unit/ops-metrics.test.ts and
# test/e2e/ops.test.ts run on the metrics (`promtool check metrics`; in Debian 12 only the package
# prometheus carries it); tcpdump, which reads back `lvs-xdp capture`'s pcapng
# (test/packet/capture.test.ts, test/e2e/share.test.ts); nftables, whose DNAT the live-rate
# benchmark's generic-mode test compares with (test/packet/bench-live.test.ts). (BIRD 2, which the BGP and ECMP tests run, is setup.sh's: `lvs-xdp demo
# --ha` needs it too.) Installs what is missing (Debian 12, as root); idempotent and quick when
# everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
had_prometheus=$(dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -c "install ok installed" || true)
bash scripts/apt-ensure.sh setup-test chromium keepalived prometheus tcpdump nftables
if [ "$had_prometheus" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  # Installed here for promtool alone: the Prometheus server the package enables is not wanted.
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
# Another project's XDP programs for the interface-sharing tests (test/e2e/share.test.ts).
make -s -C test/peer-xdp
