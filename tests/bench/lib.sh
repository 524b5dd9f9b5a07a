# tests/bench/lib.sh — shell helpers shared by bench.sh and stampede/run.sh. Source it after
# defining log(); it installs the EXIT/INT/TERM traps that stop every process in `pids`.

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
