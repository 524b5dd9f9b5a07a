# tests/bench/lib.sh — shell helpers shared by the bench scripts (bench.sh, tls_bench.sh,
# cluster_bench.sh, stampede/run.sh). Source it after defining log(); it installs the
# EXIT/INT/TERM traps that stop every process in `pids`.

pids=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ping PORT [SECONDS]: wait until a RESP server on 127.0.0.1:PORT answers PING.
wait_ping() {
  local deadline=$((SECONDS + ${2:-10}))
  until redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; do
    ((SECONDS < deadline)) || { log "nothing answers PING on port $1"; return 1; }
    sleep 0.1
  done
}

# ports_free PORT...: exit 1 (after a log line) when something listens on one of the ports.
ports_free() {
  local p
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      log "port $p is in use: choose other ports with PORT_BASE"
      exit 1
    fi
  done
}

# prepare_bench OUT: installs the bench packages, builds the release preset unless
# BENCH_BUILD=0 (its output in OUT/build.log), and sets server_cpu / client_cpu: servers on
# CPU 0, load generators on CPU 1 (nothing pinned on one core).
prepare_bench() {
  "$root/scripts/deps.sh" bench
  if [[ ${BENCH_BUILD:-1} == 1 ]]; then
    log "building corral (release preset)"
    { cmake --preset release && cmake --build --preset release; } >"$1/build.log" 2>&1
  fi
  if [[ $(nproc) -ge 2 ]]; then
    server_cpu=(taskset -c 0)
    client_cpu=(taskset -c 1)
  else
    server_cpu=()
    client_cpu=()
  fi
}
