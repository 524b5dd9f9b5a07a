#!/usr/bin/env bash
# tests/bench/global_limit_cost.sh — what a global rate limit (`scope: global`) costs corral per
# request, against the same limit with `scope: local`, in instructions counted by callgrind (a
# number that does not move with the machine's load). A benchmark, not a test. Target: global
# within 10% of local (credits are spent locally; Redis sees one take per batch).
#
#   1 redis-server
#     --> corral_local and corral_global (release build, workers: 1), each under
#         valgrind --tool=callgrind, with one limit on GET and SET that never trips
#         (RATE, BURST; no key_by: one bucket), scope local or global
#     --> per test (GET, SET at P=1 and P=16): callgrind_control --zero, redis-benchmark -n N
#         -c 50 -r 100000, callgrind_control --dump; instructions (Ir) of the dump / N
#     --> a table: Ir per request for both, their ratio, and the takes the global one made
#
# Environment: REQUESTS [50000]  RATE [1000000/s]  BURST [100000]  PORT_BASE [17740]
#   CORRAL_BIN [build/release/cmd/corral/corral]  BENCH_BUILD [1]
#   OUT_DIR [build/bench/glimit-cost-<time>]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
here=$root/tests/bench
requests=${REQUESTS:-50000}
rate=${RATE:-1000000/s}
burst=${BURST:-100000}
port_base=${PORT_BASE:-17740}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
out=${OUT_DIR:-$root/build/bench/glimit-cost-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { printf '[glimit-cost %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

redis_port=$port_base
declare -A port=([local]=$((port_base + 1)) [global]=$((port_base + 2)))
declare -A admin=([local]=$((port_base + 3)) [global]=$((port_base + 4)))
# shellcheck source=lib.sh
source "$here/lib.sh"
ports_free "$redis_port" "${port[@]}" "${admin[@]}"
prepare_bench "$out"
command -v valgrind >/dev/null || { log "valgrind is not installed"; exit 1; }
"$corral_bin" --version >/dev/null || { log "no corral binary at $corral_bin"; exit 1; }

start_redis "$redis_port" "$out/redis.log"

declare -A vg_pid
for s in local global; do
  cat >"$out/corral_$s.yaml" <<EOF
listen: [127.0.0.1:${port[$s]}]
workers: 1
admin: {listen: 127.0.0.1:${admin[$s]}}
upstream: {primary: 127.0.0.1:$redis_port, command_timeout: 10s}
global:
  rate_limits:
    - {name: cost-$s, rate: $rate, burst: $burst, commands: [GET, SET], scope: $s}
EOF
  "$corral_bin" --check-config "$out/corral_$s.yaml" >"$out/check_$s.log" 2>&1 ||
    { log "corral refuses the $s config:"; cat "$out/check_$s.log" >&2; exit 1; }
  "${server_cpu[@]}" valgrind --tool=callgrind --callgrind-out-file="$out/$s.%p.out" \
    "$corral_bin" --config "$out/corral_$s.yaml" >"$out/corral_$s.log" 2>&1 &
  pids+=($!)
  vg_pid[$s]=$!
  wait_ping "${port[$s]}" 60
done

# control SYSTEM OP: callgrind_control OP on the system's valgrind (lib.sh).
control() { callgrind_poke "${vg_pid[$1]}" "${port[$1]}" "$2"; }

# metric SYSTEM PATTERN: the sum of the /metrics samples whose line matches PATTERN.
metric() {
  curl -s "http://127.0.0.1:${admin[$1]}/metrics" |
    awk -v pat="$2" '$0 ~ pat && $1 !~ /^#/ { n += $NF } END { printf "%d", n }'
}

# measure SYSTEM TEST P: prints the instructions per request.
measure() {
  local s=$1 test=$2 p=$3
  control "$s" --zero
  "${client_cpu[@]}" redis-benchmark -h 127.0.0.1 -p "${port[$s]}" -d 32 -r 100000 \
    -n "$requests" -c 50 -P "$p" -q -t "${test,,}" >>"$out/redis-benchmark.log" 2>&1
  control "$s" --dump
  callgrind_take "$out/$s.${vg_pid[$s]}.out" "$out/$s.$test.P$p.callgrind" "$requests"
}

log "warm-up"
for s in local global; do measure "$s" GET 16 >/dev/null; done
printf '%-4s %3s %14s %14s %7s %7s\n' test P "local Ir/req" "global Ir/req" ratio takes |
  tee "$out/table.txt"
for test in GET SET; do
  for p in 1 16; do
    t0=$(metric global 'corral_ratelimit_global_takes_total')
    l=$(measure local "$test" "$p")
    g=$(measure global "$test" "$p")
    t1=$(metric global 'corral_ratelimit_global_takes_total')
    printf '%-4s %3s %14s %14s %7s %7s\n' "$test" "$p" "$l" "$g" \
      "$(awk -v a="$g" -v b="$l" 'BEGIN { printf "%.3f", a / b }')" $((t1 - t0)) |
      tee -a "$out/table.txt"
  done
done
for s in local global; do
  rej=$(metric "$s" 'corral_ratelimit_requests_total.*result="rejected"')
  [[ $rej == 0 ]] || log "WARNING: the $s limit refused $rej requests (it should never trip)"
done
log "ratio = global / local (target <= 1.10); takes = refill round trips of the global limit"
log "during the test; table in $out/table.txt (requests per test: $requests; the PINGs that"
log "wake callgrind count too)"
