#!/usr/bin/env bash
# Usage: bash scripts/screenshot.sh [OUT.png]   (root; default docs/status-page.png)
# Makes the README's screenshot of the status page from a real director in a namespace lab
# (scripts/screenshot.mjs). Not part of the test run, which never writes into the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
bash scripts/setup-test.sh
exec node scripts/screenshot.mjs "${1:-docs/status-page.png}"
