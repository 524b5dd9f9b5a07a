#!/usr/bin/env bash
# scripts/test.sh — the quick-start test command: builds and runs every test. CI runs exactly this.
#
#   deps (apt) --> debug: build + ctest (unit + integration)
#              --> asan:  ASan+UBSan build + ctest
#              --> fuzz:  clang build (ASan+UBSan, libFuzzer) + corpus replays + tests/fuzz/run.sh
#                         (each target ~30 s)
#              --> release: the release build (-O2 finds warnings -O0 does not)
#              --> format: clang-format 14 --dry-run --Werror over our *.h/*.cc
#              --> generated: commands/commands.inc matches tools/gen_commands.py's output for the
#                  installed redis-server (tools/gen_commands.py --check), and no module includes
#                  one it may not use (tools/check_layers.py)
#              --> summary: one row per stage, the failed tests by name, then "N passed, M failed"
#                  as the last line
#
# N and M count ctest's tests (summed over the ctest stages) plus one per other stage. Stages run
# even after an earlier one failed, so one run shows everything; the exit status is 1 if anything
# failed.
#
# Environment:
#   CORRAL_TEST_STAGES   stages to run, in order (default "debug asan fuzz release format generated";
#                        "tsan" is available too)
#   CORRAL_FUZZ_SECONDS  seconds per fuzz target (default 30)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
root=$(pwd)

stages=${CORRAL_TEST_STAGES:-"debug asan fuzz release format generated"}
fuzz_seconds=${CORRAL_FUZZ_SECONDS:-30}
log_dir="$root/build/test-logs"

total_passed=0
total_failed=0
summary=()
failures=()

banner() { printf '\n===== %s =====\n' "$*"; }

# record STAGE PASSED FAILED SECONDS DETAIL
record() {
  total_passed=$((total_passed + $2))
  total_failed=$((total_failed + $3))
  local result=ok
  [[ $3 -gt 0 ]] && result=FAILED
  summary+=("$(printf '%-8s %-7s %4ss  %s' "$1" "$result" "$4" "$5")")
}

# build PRESET: configure and build one preset, streaming the output.
build() {
  cmake --preset "$1" && cmake --build --preset "$1"
}

# ctest_stage PRESET: build, run ctest, and count its tests from the closing line
# "NN% tests passed, Y tests failed out of Z". Returns 1 only when the build failed.
ctest_stage() {
  local preset=$1 start=$SECONDS log="$log_dir/ctest-$1.log"
  banner "$preset: build"
  if ! build "$preset"; then
    record "$preset" 0 1 $((SECONDS - start)) "build failed"
    return 1
  fi
  banner "$preset: ctest"
  ctest --preset "$preset" --output-on-failure 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [[ -z "$line" ]]; then
    # No closing line: ctest found no tests or could not run; count the stage as one failure.
    record "$preset" 0 1 $((SECONDS - start)) "ctest gave no result (exit $rc)"
    return
  fi
  local failed total
  failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  if [[ $rc -ne 0 && $failed -eq 0 ]]; then
    failed=1  # ctest failed for a reason its count does not show; never report that as green
  fi
  record "$preset" $((total - failed)) "$failed" $((SECONDS - start)) \
    "$((total - failed)) of $total ctest tests passed"
  # Name what failed next to the summary: CI shows only the end of this script's output.
  local what
  while IFS= read -r what; do
    failures+=("$preset: ${what:0:200}")
  done < <(sed -n '/^The following tests FAILED:/,/^[^[:space:]]/{/^[[:space:]]/p}' "$log" |
    sed -E 's/^[[:space:]]+//'; grep -E '^(FAILED|ERROR) [^ ]+::' "$log" || true)
}

# fuzz: the clang build (everything, so clang's warnings count too), ctest's corpus replays
# (fuzz_*), then tests/fuzz/run.sh, which counts as one more test.
fuzz_stage() {
  ctest_stage fuzz || return 0  # no binaries to run
  local start=$SECONDS
  if [[ ! -f tests/fuzz/run.sh ]]; then
    echo "tests/fuzz/run.sh is missing" >&2
    record fuzz-run 0 1 $((SECONDS - start)) "tests/fuzz/run.sh missing"
    return
  fi
  banner "fuzz: tests/fuzz/run.sh (${fuzz_seconds}s per target)"
  if bash tests/fuzz/run.sh "$fuzz_seconds" build/fuzz; then
    record fuzz-run 1 0 $((SECONDS - start)) "${fuzz_seconds}s per target"
  else
    record fuzz-run 0 1 $((SECONDS - start)) "tests/fuzz/run.sh failed"
  fi
}

release_stage() {
  local start=$SECONDS
  banner "release: build"
  if build release; then
    record release 1 0 $((SECONDS - start)) "build/release/cmd/corral/corral"
  else
    record release 0 1 $((SECONDS - start)) "build failed"
  fi
}

# Our sources: tracked or new files, minus what .gitignore excludes and generated *.inc files.
list_sources() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -co --exclude-standard -- '*.h' '*.cc'
  else
    find cmd config doctor policies proxy tests -name '*.h' -o -name '*.cc' 2>/dev/null
  fi | grep -v '\.inc' | sort
}

format_stage() {
  local start=$SECONDS fmt=clang-format
  banner "format: clang-format --dry-run --Werror"
  command -v clang-format-14 >/dev/null 2>&1 && fmt=clang-format-14
  local files=()
  mapfile -t files < <(list_sources)
  if [[ ${#files[@]} -eq 0 ]]; then
    record format 1 0 $((SECONDS - start)) "no sources"
    return
  fi
  local out bad
  if out=$("$fmt" --dry-run --Werror "${files[@]}" 2>&1); then
    record format 1 0 $((SECONDS - start)) "${#files[@]} files"
    return
  fi
  head -n 60 <<<"$out"
  bad=$(grep -oE '^[^:]+\.(h|cc):' <<<"$out" | tr -d ':' | sort -u | tr '\n' ' ')
  bad=${bad% }
  echo "needs formatting: $bad"
  echo "fix with: $fmt -i $bad"
  record format 0 1 $((SECONDS - start)) "$(wc -w <<<"$bad") of ${#files[@]} files need formatting"
}

# generated: the checked-in command table is what its generator makes from the installed Redis.
generated_stage() {
  local start=$SECONDS
  banner "generated: tools/gen_commands.py --check, tools/check_layers.py"
  local failed=0 detail="commands/commands.inc up to date; module layers kept"
  if ! /usr/bin/python3 tools/gen_commands.py --check; then
    failed=1
    detail="commands/commands.inc out of date"
  fi
  if ! /usr/bin/python3 tools/check_layers.py; then
    failed=1
    detail="$detail; wrong-way includes (tools/check_layers.py)"
  fi
  record generated $((1 - failed)) "$failed" $((SECONDS - start)) "$detail"
}

banner "deps"
if ! scripts/deps.sh test; then
  echo "dependency installation failed"
  echo "0 passed, 1 failed"
  exit 1
fi
mkdir -p "$log_dir"

for stage in $stages; do
  case "$stage" in
    debug | asan | tsan) ctest_stage "$stage" ;;
    fuzz) fuzz_stage ;;
    release) release_stage ;;
    format) format_stage ;;
    generated) generated_stage ;;
    *)
      echo "unknown stage '$stage' (known: debug asan tsan fuzz release format generated)" >&2
      record "$stage" 0 1 0 "unknown stage"
      ;;
  esac
done

banner "summary"
printf '%s\n' "${summary[@]}"
[[ ${#failures[@]} -gt 0 ]] && printf 'failed: %s\n' "${failures[@]}"
echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
