#!/usr/bin/env bash
# deps.sh build|run|test|bench|all — install the Debian 12 packages corral needs for one purpose.
#
#   build  compile corral (cmake, ninja, g++, libevent, spdlog/fmt, yaml-cpp, doctest, hiredis)
#   run    build + redis-server/redis-cli (scripts/run.sh starts a local Redis when none answers)
#   test   build + everything scripts/test.sh uses (Redis, twemproxy, pytest with redis-py and
#          PyYAML for Debian's python3, clang/libFuzzer, clang-format 14, node/npm for the Node
#          client tests and the Kubernetes schema check, promtool from prometheus to lint
#          /metrics, systemd-analyze from systemd to verify the unit in deploy/systemd, headless
#          chromium for the dashboard test)
#   bench  build + everything tests/bench/bench.sh uses (Redis, twemproxy, valgrind, taskset)
#   all    the union of the above
#
# Idempotent: only packages that dpkg reports as not installed are installed, `apt-get update` runs
# only when something must be installed, and nothing is printed when everything is present.
# Uses sudo when not root (and sudo exists).
set -euo pipefail

build_pkgs=(cmake ninja-build g++ pkg-config libevent-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev doctest-dev libssl-dev libhiredis-dev)
redis_pkgs=(redis-server redis-tools)
# The stampede demo of scripts/run.sh (CORRAL_DEMO=1): the sample origin and a way to read it.
demo_pkgs=(python3 curl)
# libclang-rt-14-dev holds libFuzzer and the sanitizer runtimes; clang only recommends it, and we
# install without recommends.
# prometheus: only its promtool is used (tests/integration/test_admin.py lints /metrics with it);
# the server it also installs is not started by anything of ours.
# openssl: the TLS tests make their certificates with its command line.
# chromium: tests/integration/test_dashboard.py loads the admin port's /dashboard in headless
# Chromium (--dump-dom, --screenshot) to check the numbers the page's JavaScript shows.
# systemd: only its systemd-analyze is used (test_deploy_files.py verifies
# deploy/systemd/corral.service); nothing is started with it.
test_pkgs=(openssl nutcracker python3 python3-redis python3-pytest python3-yaml clang libclang-rt-14-dev
  clang-format util-linux nodejs npm prometheus chromium systemd)
bench_pkgs=(nutcracker valgrind util-linux python3)

usage() {
  echo "usage: $0 build|run|test|bench|all" >&2
  exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
  build) want=("${build_pkgs[@]}") ;;
  run) want=("${build_pkgs[@]}" "${redis_pkgs[@]}" "${demo_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${redis_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) want=("${build_pkgs[@]}" "${redis_pkgs[@]}" "${bench_pkgs[@]}") ;;
  all) want=("${build_pkgs[@]}" "${redis_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) usage ;;
esac

missing=()
for p in "${want[@]}"; do
  # A NodeSource nodejs bundles npm and conflicts with Debian's npm: it counts as npm installed.
  if [[ $p == npm && "$(dpkg-query -W -f='${Status} ${Provides}' nodejs 2>/dev/null || true)" == \
    "install ok installed"*npm* ]]; then
    continue
  fi
  # "install ok installed" is the only state in which a package is really usable.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    # The lists overlap (nutcracker, python3, util-linux); name each package once.
    [[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "deps.sh: missing packages: ${missing[*]}; not root and no sudo: install them and retry" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >&2
