#!/usr/bin/env bash
# tests/bench/fill_hit_cost.sh — what a GET hit of a fill policy costs corral, in instructions
# counted by callgrind, for two binaries: BASE_BIN (before a change) and CORRAL_BIN (after). A
# benchmark, not a test: it shows that work on the fill path (e.g. single flight across
# workers, which only misses and writes reach) leaves hits where they were.
#
#   1 redis-server, user:1 and fresh:1 stored (no TTL, and a PTTL far from expiry)
#     --> base and new corral (workers: 2), each under valgrind --tool=callgrind, with a fill
#         policy `user` (plain GET hit) and `fresh` (stale_while_revalidate: a hit is read with
#         its PTTL and goes through FillEngine::onHit); the origin is never called
#     --> per row: callgrind_control --zero, redis-benchmark -n N -c 50 GET <key>,
#         callgrind_control --dump; instructions (Ir) of the dump / N
#     --> a table: Ir per GET hit for both and their ratio
#
# Environment: REQUESTS [20000]  PORT_BASE [17790]  BASE_BIN (required)
#   CORRAL_BIN [build/release/cmd/corral/corral]  OUT_DIR [build/bench/fill-hit-<time>]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
here=$root/tests/bench
requests=${REQUESTS:-20000}
port_base=${PORT_BASE:-17790}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
base_bin=${BASE_BIN:?BASE_BIN: the corral binary to compare against}
out=${OUT_DIR:-$root/build/bench/fill-hit-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { printf '[fill-hit %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

redis_port=$port_base
declare -A bin=([base]=$base_bin [new]=$corral_bin)
declare -A port=([base]=$((port_base + 1)) [new]=$((port_base + 2)))
declare -A admin=([base]=$((port_base + 3)) [new]=$((port_base + 4)))
# shellcheck source=lib.sh
source "$here/lib.sh"
ports_free "$redis_port" "${port[@]}" "${admin[@]}"
command -v valgrind >/dev/null || { log "valgrind is not installed"; exit 1; }
server_cpu=()
client_cpu=()
if [[ $(nproc) -ge 2 ]]; then server_cpu=(taskset -c 0) client_cpu=(taskset -c 1); fi

start_redis "$redis_port" "$out/redis.log"
redis-cli -p "$redis_port" set user:1 "$(head -c 64 /dev/zero | tr '\0' v)" >/dev/null
redis-cli -p "$redis_port" set fresh:1 "$(head -c 64 /dev/zero | tr '\0' v)" PX 86400000 >/dev/null

declare -A vg_pid
for s in base new; do
  "${bin[$s]}" --version >/dev/null || { log "no corral binary at ${bin[$s]}"; exit 1; }
  cat >"$out/corral_$s.yaml" <<EOF
listen: [127.0.0.1:${port[$s]}]
workers: 2
admin: {listen: 127.0.0.1:${admin[$s]}}
upstream: {primary: 127.0.0.1:$redis_port, command_timeout: 10s}
global: {fill_secret: fill-hit-cost-secret-0123456789}
origins:
  users: {base_url: "http://127.0.0.1:9", timeout: 500ms}
policies:
  - name: user
    match: "user:<id:u64>"
    ttl: {default: 60s}
    fill: {origin: users, path: "/v1/users/<id>"}
    stampede: {single_flight: local}
  - name: fresh
    match: "fresh:<id:u64>"
    ttl: {default: 60s}
    fill: {origin: users, path: "/v1/users/<id>"}
    stampede: {single_flight: local}
    freshness: {stale_while_revalidate: 10s}
EOF
  "${bin[$s]}" --check-config "$out/corral_$s.yaml" >"$out/check_$s.log" 2>&1 ||
    { log "corral ($s) refuses the config:"; cat "$out/check_$s.log" >&2; exit 1; }
  "${server_cpu[@]}" valgrind --tool=callgrind --callgrind-out-file="$out/$s.%p.out" \
    "${bin[$s]}" --config "$out/corral_$s.yaml" >"$out/corral_$s.log" 2>&1 &
  pids+=($!)
  vg_pid[$s]=$!
  wait_ping "${port[$s]}" 60
done

# measure SYSTEM KEY: prints the instructions per GET of KEY.
measure() {
  local s=$1 key=$2
  callgrind_poke "${vg_pid[$s]}" "${port[$s]}" --zero
  "${client_cpu[@]}" redis-benchmark -h 127.0.0.1 -p "${port[$s]}" -n "$requests" -c 50 -q \
    GET "$key" >>"$out/redis-benchmark.log" 2>&1
  callgrind_poke "${vg_pid[$s]}" "${port[$s]}" --dump
  callgrind_take "$out/$s.${vg_pid[$s]}.out" "$out/$s.$key.callgrind" "$requests"
}

log "warm-up"
for s in base new; do measure "$s" user:1 >/dev/null; done
printf '%-8s %12s %12s %7s\n' key "base Ir/GET" "new Ir/GET" ratio | tee "$out/table.txt"
for key in user:1 fresh:1; do
  b=$(measure base "$key")
  n=$(measure new "$key")
  printf '%-8s %12s %12s %7s\n' "$key" "$b" "$n" \
    "$(awk -v a="$n" -v b="$b" 'BEGIN { printf "%.3f", a / b }')" | tee -a "$out/table.txt"
done
for s in base new; do
  calls=$(curl -s "http://127.0.0.1:${admin[$s]}/metrics" |
    awk '/^corral_fill_events_total.*event="fills"/ { n += $NF } END { printf "%d", n }')
  [[ $calls == 0 ]] || log "WARNING: $s made $calls fills (every GET should hit)"
done
log "ratio = new / base; table in $out/table.txt (requests per row: $requests; the PINGs that"
log "wake callgrind count too)"
