#!/usr/bin/env bash
# Usage: bash scripts/run-tests.sh [unit|packet|e2e ...]   (default: all three tiers, in that order)
# Runs the compiled test files of each tier (test/unit pure, test/packet root + BPF_PROG_TEST_RUN,
# test/e2e namespace labs), one node test runner per file so that each file's wall time (start-up
# and module loading included) is printed, then the files, counts and time of each tier and a
# closing 'tests: N passed, N failed, N skipped' line. Exits non-zero on any failure.
# LVS_TEST_FILTER=<substring of a dist path> runs a subset. Files are taken from the .ts sources,
# so a test deleted or moved in git never runs from a stale dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
TIERS=(unit packet e2e)

# Every test file is in exactly one tier: one elsewhere would silently never run.
mapfile -t stray < <(find . \( -path ./node_modules -o -path ./dist -o -path ./build -o -path ./.git \) -prune \
  -o -name '*.test.ts' -print | sed 's|^\./||' | grep -vE '^test/(unit|packet|e2e)/' | sort)
if ((${#stray[@]})); then
  for f in "${stray[@]}"; do echo "run-tests: $f is outside the test tiers: move it to test/unit, test/packet or test/e2e" >&2; done
  exit 2
fi

tiers=("$@")
((${#tiers[@]})) || tiers=("${TIERS[@]}")
for t in "${tiers[@]}"; do
  [[ " ${TIERS[*]} " == *" $t "* ]] || { echo "run-tests: unknown tier '$t' (tiers: ${TIERS[*]})" >&2; exit 2; }
done

declare -A files_of
selected=0
for t in "${tiers[@]}"; do
  mapfile -t srcs < <(find "test/$t" -name '*.test.ts' | sort)
  list=()
  for s in "${srcs[@]}"; do
    d="dist/${s%.ts}.js"
    [[ -z "${LVS_TEST_FILTER:-}" ]] || grep -q -- "$LVS_TEST_FILTER" <<<"$d" || continue
    [ -f "$d" ] || { echo "run-tests: $d is missing: run bash scripts/setup.sh (it compiles the tests)" >&2; exit 1; }
    list+=("$d")
  done
  files_of[$t]="${list[*]}"
  selected=$((selected + ${#list[@]}))
done
if ((selected == 0)); then echo "run-tests: no test files match '${LVS_TEST_FILTER:-}' in tiers ${tiers[*]}" >&2; exit 1; fi

# Ctrl-C stops the run instead of going on with the next file.
trap 'echo "run-tests: interrupted" >&2; exit 130' INT TERM
tap=$(mktemp); trap 'rm -f "$tap"' EXIT
secs() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
last() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$tap" | tail -1; }

declare -A t_files t_pass t_fail t_skip t_ms
failed_files=()
for t in "${tiers[@]}"; do
  t_files[$t]=0 t_pass[$t]=0 t_fail[$t]=0 t_skip[$t]=0 t_ms[$t]=0
  for f in ${files_of[$t]}; do
    printf '\n[tests] %s\n' "$f"
    t0=${EPOCHREALTIME//[^0-9]/}
    rc=0
    node --test --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tap" "$f" || rc=$?
    ms=$(((${EPOCHREALTIME//[^0-9]/} - t0) / 1000))
    pass=$(last pass) fail=$(last fail) cancelled=$(last cancelled) skip=$(last skipped) todo=$(last todo)
    pass=${pass:-0} fail=$((${fail:-0} + ${cancelled:-0})) skip=$((${skip:-0} + ${todo:-0}))
    # A runner that died before its summary (crash, signal) still fails the run.
    ((rc == 0 || fail > 0)) || fail=1
    ((fail == 0)) || failed_files+=("$f")
    printf '[tests] %s: %s, %d passed, %d failed, %d skipped\n' "$f" "$(secs "$ms")" "$pass" "$fail" "$skip"
    t_files[$t]=$((t_files[$t] + 1)) t_pass[$t]=$((t_pass[$t] + pass)) t_fail[$t]=$((t_fail[$t] + fail))
    t_skip[$t]=$((t_skip[$t] + skip)) t_ms[$t]=$((t_ms[$t] + ms))
  done
done

echo
printf '%-8s %6s %8s %8s %8s %10s\n' tier files passed failed skipped time
P=0 F=0 S=0 M=0 N=0
for t in "${tiers[@]}"; do
  printf '%-8s %6d %8d %8d %8d %10s\n' "$t" "${t_files[$t]}" "${t_pass[$t]}" "${t_fail[$t]}" "${t_skip[$t]}" "$(secs "${t_ms[$t]}")"
  N=$((N + t_files[$t])) P=$((P + t_pass[$t])) F=$((F + t_fail[$t])) S=$((S + t_skip[$t])) M=$((M + t_ms[$t]))
done
printf '%-8s %6d %8d %8d %8d %10s\n' total "$N" "$P" "$F" "$S" "$(secs "$M")"
for f in "${failed_files[@]}"; do echo "failed: $f"; done
echo "tests: $P passed, $F failed, $S skipped"
((F == 0))
