#!/usr/bin/env bash
# Runs every test file under dist/test with node's test runner. Set LVS_TEST_FILTER to a
# substring of a path to run a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -- "${LVS_TEST_FILTER:-}")
if ((${#files[@]} == 0)); then echo "no test files found under dist/test" >&2; exit 1; fi
exec node --test --test-concurrency=1 "${files[@]}"
