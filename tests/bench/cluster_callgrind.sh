#!/usr/bin/env bash
# tests/bench/cluster_callgrind.sh — corral's instructions per request in front of a Redis
# Cluster and in front of one Redis, counted by callgrind: a number that does not move with the
# machine's load, unlike the CPU seconds of cluster_bench.sh. A benchmark, not a test.
#
#   3 cluster nodes (no replicas) + 1 plain redis-server
#     --> corral_cluster and corral_single (release build, workers: 1), each under
#         valgrind --tool=callgrind (collection on for the whole run)
#     --> per test (GET, SET at P=1 and P=16; MGET of 10 keys in 10 slots; MGET3 of 10 keys
#         under 3 hash tags, one per shard): callgrind_control --zero, redis-benchmark -n N
#         -c 50, callgrind_control --dump; instructions (Ir) of the dump / N
#     --> a table: Ir per request for both, and their ratio
#
# Environment: REQUESTS [20000]  PORT_BASE [17700]  CORRAL_BIN [build/release/cmd/corral/corral]
#   BENCH_BUILD [1]  OUT_DIR [build/bench/callgrind-<time>]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
here=$root/tests/bench
requests=${REQUESTS:-20000}
port_base=${PORT_BASE:-17700}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
out=${OUT_DIR:-$root/build/bench/callgrind-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { printf '[cluster-callgrind %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

nodes=("$port_base" $((port_base + 1)) $((port_base + 2)))
single=$((port_base + 3))
declare -A port=([corral_cluster]=$((port_base + 4)) [corral_single]=$((port_base + 5)))
# shellcheck source=lib.sh
source "$here/lib.sh"
ports_free "${nodes[@]}" "$single" $((port_base + 4)) $((port_base + 5)) \
  $((port_base + 10)) $((port_base + 11)) $((port_base + 12))
prepare_bench "$out"
command -v valgrind >/dev/null || { log "valgrind is not installed"; exit 1; }

start_redis "$single" "$out/single.log"
start_cluster "$out" $((port_base + 10)) "${nodes[@]}"

cat >"$out/corral_cluster.yaml" <<EOF
listen: [127.0.0.1:${port[corral_cluster]}]
workers: 1
upstream:
  cluster: {seeds: [$(IFS=,; echo "${seeds[*]}")]}
  command_timeout: 10s
EOF
cat >"$out/corral_single.yaml" <<EOF
listen: [127.0.0.1:${port[corral_single]}]
workers: 1
upstream: {primary: 127.0.0.1:$single, command_timeout: 10s}
EOF
declare -A vg_pid
for s in corral_cluster corral_single; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$s.%p.out" "$corral_bin" \
    --config "$out/$s.yaml" >"$out/$s.log" 2>&1 &
  pids+=($!)
  vg_pid[$s]=$!
  wait_ping "${port[$s]}" 60
done
deadline=$((SECONDS + 30))
until [[ $(redis-cli -p "${port[corral_cluster]}" set callgrind:probe 1 2>&1) == OK ]]; do
  ((SECONDS < deadline)) || { log "corral_cluster never routed a write"; exit 1; }
  sleep 0.2
done

# The MGET keys, as cluster_bench.sh picks them (lib.sh).
{ read -r -a mget_keys; read -r -a mget3_keys; } < <(mget_key_sets "${nodes[0]}")
for k in "${mget_keys[@]}" "${mget3_keys[@]}"; do
  redis-cli -p "${port[corral_cluster]}" set "$k" xxxxxxxx >/dev/null
  redis-cli -p "$single" set "$k" xxxxxxxx >/dev/null
done

# control SYSTEM OP: callgrind_control OP on the system's valgrind (lib.sh).
control() { callgrind_poke "${vg_pid[$1]}" "${port[$1]}" "$2"; }

# measure SYSTEM TEST P: prints the instructions per request.
measure() {
  local s=$1 test=$2 p=$3 cmd
  case $test in
    MGET) cmd=(MGET "${mget_keys[@]}") ;;
    MGET3) cmd=(MGET "${mget3_keys[@]}") ;;
    *) cmd=(-t "${test,,}") ;;
  esac
  control "$s" --zero
  redis-benchmark -h 127.0.0.1 -p "${port[$s]}" -d 32 -r 100000 -n "$requests" -c 50 -P "$p" \
    -q "${cmd[@]}" >>"$out/redis-benchmark.log" 2>&1
  control "$s" --dump
  callgrind_take "$out/$s.${vg_pid[$s]}.out" "$out/$s.$test.P$p.callgrind" "$requests"
}

log "warm-up"
for s in corral_cluster corral_single; do measure "$s" GET 16 >/dev/null; done
printf '%-6s %3s %16s %16s %8s\n' test P "cluster Ir/req" "single Ir/req" ratio | tee "$out/table.txt"
for test in GET SET MGET MGET3; do
  for p in 1 16; do
    c=$(measure corral_cluster "$test" "$p")
    s=$(measure corral_single "$test" "$p")
    printf '%-6s %3s %16s %16s %8s\n' "$test" "$p" "$c" "$s" \
      "$(awk -v a="$c" -v b="$s" 'BEGIN { printf "%.2f", a / b }')" | tee -a "$out/table.txt"
  done
done
log "table in $out/table.txt (requests per test: $requests; the PINGs that wake callgrind count too)"
