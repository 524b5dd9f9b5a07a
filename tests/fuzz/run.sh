#!/usr/bin/env bash
# Runs each libFuzzer target for DURATION_SECONDS over its committed corpus (the CI smoke run).
# New inputs go to a scratch directory, so the committed corpus only changes by hand; crashes
# are written to BUILD_DIR/fuzz-artifacts/. Exits non-zero if any target found a crash.
#
#   usage: tests/fuzz/run.sh DURATION_SECONDS BUILD_DIR
#   build: cmake -B BUILD_DIR -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCORRAL_FUZZ=ON \
#            && ninja -C BUILD_DIR fuzz_request fuzz_reply fuzz_command_reply
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DURATION_SECONDS BUILD_DIR" >&2
  exit 2
fi
duration=$1
build=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

status=0
for target in request reply command_reply; do
  bin=""
  for candidate in "$build/tests/fuzz/fuzz_$target" "$build/fuzz/fuzz_$target" "$build/fuzz_$target"; do
    if [[ -x $candidate ]]; then bin=$candidate; break; fi
  done
  if [[ -z $bin ]]; then
    echo "fuzz_$target not found under $build (build with -DCORRAL_FUZZ=ON)" >&2
    exit 2
  fi
  scratch=$(mktemp -d)
  echo "== fuzz_$target for ${duration}s"
  if ! "$bin" -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$target-" "$scratch" "$here/corpus/$target"; then
    echo "fuzz_$target FAILED; reproducers in $artifacts" >&2
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
