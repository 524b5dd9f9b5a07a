#!/usr/bin/env bash
# tests/bench/near_zipf_bench.sh — the near cache (issue 12) on the issue's own workload: GETs of
# Zipf(0.99)-distributed keys over 100,000 keys, with zipf_get (tests/bench/zipf_get.cc;
# redis-benchmark has no Zipf). A benchmark that prints tables, not a test.
#
#   redis-server (CPU 0), every key key:000000000000 .. key:000000099999 written first (32 bytes)
#   zipf:      corral_plain (no near_cache) | near_small (max_bytes SMALL_BYTES) |
#              near (max_bytes BIG_BYTES), workers: 1, CPU 0; zipf_get alone on CPU 1, c=50,
#              P=1 and P=16, ROUNDS rounds with the systems alternating; per run Redis's GET calls
#              (INFO commandstats), corral's near hits/misses (/metrics) and the CPU time Redis
#              and the corral used (schedstat)
#   offload:   4 corrals with near_cache (BIG_BYTES), CPU 0, one Redis; 4 zipf_get (13+13+12+12
#              connections, own seeds) at once on CPU 1: the share of their GETs Redis executed
#   saturated: Redis and LRANGE noise (redis-benchmark, 600-element replies) on CPU 0; a near
#              corral and zipf_get on CPU 1 (the app's host) at RATE GETs/s over the 1,000 hottest
#              keys: p99 through the near corral and straight to Redis, quiet and saturated
#   tracking:  tracking_cost.py: Redis's memory and CPU for CLIENT TRACKING default vs BCAST
#
# Environment: ROUNDS [3]  DURATION [4] (s per run)  WARMUP [1] (s per run, not counted)
#   SMALL_BYTES [256KiB]  BIG_BYTES [32MiB]  MAX_AGE [10m]  RATE [5000]  PHASES ["zipf offload saturated tracking"]
#   PORT_BASE [17900] (uses it to +19)  CORRAL_BIN  BENCH_BUILD [1]  OUT_DIR [build/bench/near-zipf-<time>]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
here=$root/tests/bench
rounds=${ROUNDS:-3}
duration=${DURATION:-4}
warmup=${WARMUP:-1}
small_bytes=${SMALL_BYTES:-256KiB}
big_bytes=${BIG_BYTES:-32MiB}
# Each cached key is read again from Redis once per max_age: with 100,000 keys per corral, 60s
# would cost ~1,700 GETs/s per corral in Redis, and the keys the warm-up filled together expire
# together; 10m keeps that refill near 0.2% of the load.
max_age=${MAX_AGE:-10m}
rate=${RATE:-5000}
phases=${PHASES:-zipf offload saturated tracking}
port_base=${PORT_BASE:-17900}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
zipf_get=$root/build/release/tests/zipf_get
out=${OUT_DIR:-$root/build/bench/near-zipf-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { printf '[near-zipf %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Client ports at PORT_BASE + 0..9, their admin (/metrics) ports at + 10..19.
declare -A port=([direct]=$port_base [corral_plain]=$((port_base + 1))
  [near_small]=$((port_base + 2)) [near]=$((port_base + 3)) [app]=$((port_base + 8)))
for i in 1 2 3 4; do port[near$i]=$((port_base + 3 + i)); done
# shellcheck source=lib.sh
source "$here/lib.sh"
all_ports=("${port[@]}")
for p in "${port[@]}"; do all_ports+=($((p + 10))); done
ports_free "${all_ports[@]}"
prepare_bench "$out"
[[ -x $zipf_get ]] || { log "no $zipf_get: build the release preset"; exit 1; }
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# start_corral NAME MAX_BYTES|- CPU...: corral NAME (policy "hot" on key:*, near_cache unless
# MAX_BYTES is -) in `pids`, admin on its port + 10.
start_corral() {
  local s=$1 bytes=$2 near="" admin
  shift 2
  admin=$((port[$s] + 10))
  [[ $bytes != - ]] && near=", near_cache: {max_bytes: $bytes, max_age: $max_age}"
  cat >"$out/$s.yaml" <<EOF
listen: [127.0.0.1:${port[$s]}]
workers: 1
upstream: {primary: 127.0.0.1:${port[direct]}}
admin: {listen: 127.0.0.1:$admin}
policies:
  - {name: hot, match: "glob:key:*"$near}
EOF
  "$@" "$corral_bin" --config "$out/$s.yaml" >"$out/$s.log" 2>&1 &
  pids+=($!)
  corral_pid[$s]=$!
  wait_ping "${port[$s]}"
}
gets() { redis-cli -p "${port[direct]}" info commandstats |
  sed -n 's/^cmdstat_get:calls=\([0-9]*\),.*/\1/p'; }
# calls: every command Redis ran (a near cache's fill is GET + PTTL).
calls() { redis-cli -p "${port[direct]}" info commandstats |
  awk -F'calls=' '/^cmdstat_/ { split($2, a, ","); s += a[1] } END { print s }'; }
# metric NAME SYSTEM: the sum of NAME's samples on SYSTEM's /metrics (0 without an admin port).
metric() {
  { curl -s "http://127.0.0.1:$((port[$2] + 10))/metrics" || true; } |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}
# field NAME LINE: a key=value field of zipf_get's output line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

start_redis "${port[direct]}" "$out/redis.log"
redis_pid=${pids[-1]}
declare -A corral_pid=()
# server_ns SYSTEM: ns Redis and SYSTEM's corral (if any) have run so far.
server_ns() {
  local ns
  ns=$(proc_run_ns "$redis_pid")
  [[ -n ${corral_pid[$1]:-} ]] && ns=$((ns + $(proc_run_ns "${corral_pid[$1]}")))
  echo "$ns"
}
log "writing 100,000 keys (32-byte values)"
"${client_cpu[@]}" "$zipf_get" -p "${port[direct]}" -k 100000 --fill 32 >/dev/null

if [[ $phases == *zipf* ]]; then
  start_corral corral_plain - "${server_cpu[@]}"
  start_corral near_small "$small_bytes" "${server_cpu[@]}"
  start_corral near "$big_bytes" "${server_cpu[@]}"
  for s in near_small near; do  # the caches warm once; every run then starts warm
    "${client_cpu[@]}" "$zipf_get" -p "${port[$s]}" -c 50 -P 16 -n 3000000 --seed 99 >/dev/null
  done
  echo "round,system,P,ops_s,p50_ms,p99_ms,requests,redis_gets,redis_calls,near_hits,near_misses,server_ns" \
    >"$out/zipf.csv"
  systems=(direct corral_plain near_small near)
  for ((r = 1; r <= rounds; r++)); do
    for p in 1 16; do
      for ((i = 0; i < ${#systems[@]}; i++)); do
        s=${systems[$(((i + r) % ${#systems[@]}))]}
        g0=$(gets) k0=$(calls) c0=$(server_ns "$s") h0=$(metric corral_near_hits_total "$s") m0=$(metric corral_near_misses_total "$s")
        line=$("${client_cpu[@]}" "$zipf_get" -p "${port[$s]}" -c 50 -P "$p" -d "$duration" \
          -w "$warmup" --seed "$r")
        [[ $s == near* ]] && sleep 0.6  # corral's near counters are published on its tick
        c1=$(server_ns "$s")
        g1=$(gets) k1=$(calls) h1=$(metric corral_near_hits_total "$s") m1=$(metric corral_near_misses_total "$s")
        [[ $(field nil "$line") == 0 ]] || { log "nil replies: $line"; exit 1; }
        echo "$r,$s,$p,$(field ops_s "$line"),$(field p50_ms "$line"),$(field p99_ms "$line"),$(field requests "$line"),$((g1 - g0)),$((k1 - k0)),$((h1 - h0)),$((m1 - m0)),$((c1 - c0))" \
          >>"$out/zipf.csv"
      done
    done
    log "zipf round $r done"
  done
fi

if [[ $phases == *offload* ]]; then
  for i in 1 2 3 4; do start_corral "near$i" "$big_bytes" "${server_cpu[@]}"; done
  conns=(13 13 12 12)
  # offload_run P N|-d: the four loads at once; echoes "ops_s_total requests_total redis_gets".
  offload_run() {
    local p=$1 i g0 g1 ops=0 reqs=0 lp=()
    shift
    g0=$(gets)
    for i in 1 2 3 4; do
      "${client_cpu[@]}" "$zipf_get" -p "${port[near$i]}" -c "${conns[$((i - 1))]}" -P "$p" \
        --seed "$((i * 1000 + RANDOM))" "$@" >"$out/offload-$i.out" &
      lp+=($!)
    done
    for i in "${lp[@]}"; do wait "$i"; done
    g1=$(gets)
    for i in 1 2 3 4; do
      local line
      line=$(cat "$out/offload-$i.out")
      ops=$((ops + $(field ops_s "$line")))
      reqs=$((reqs + $(field requests "$line")))
    done
    echo "$ops $reqs $((g1 - g0))"
  }
  log "offload: warming the 4 corrals' caches"
  offload_run 16 -n 3000000 >/dev/null
  echo "round,P,ops_s,requests,redis_gets" >"$out/offload.csv"
  for ((r = 1; r <= rounds; r++)); do
    for p in 1 16; do
      read -r ops reqs g < <(offload_run "$p" -d "$duration" -w "$warmup")
      echo "$r,$p,$ops,$reqs,$g" >>"$out/offload.csv"
    done
    log "offload round $r done"
  done
fi

if [[ $phases == *saturated* ]]; then
  # The app's host is CPU 1 (zipf_get and its sidecar corral), Redis's is CPU 0 (Redis and the
  # other clients' noise): Redis is saturated, the app's core is not.
  app_cpu=("${client_cpu[@]}")
  start_corral app "$big_bytes" "${app_cpu[@]}"
  redis-cli -p "${port[direct]}" del noise:list >/dev/null
  redis-cli -p "${port[direct]}" rpush noise:list $(seq -f 'item-%06g' 1 600) >/dev/null
  "${app_cpu[@]}" "$zipf_get" -p "${port[app]}" -c 10 -P 16 -k 1000 -n 200000 >/dev/null  # warm
  cpu() { redis-cli -p "${port[direct]}" info cpu |
    awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.3f\n", s }'; }
  echo "round,load,system,ops_s,p50_ms,p99_ms,p999_ms,redis_cpu" >"$out/saturated.csv"
  for ((r = 1; r <= rounds; r++)); do
    for load in quiet saturated; do
      noise=""
      if [[ $load == saturated ]]; then
        "${server_cpu[@]}" redis-benchmark -p "${port[direct]}" -c 20 -P 8 -n 1000000000 -l \
          lrange noise:list 0 599 >/dev/null 2>&1 &
        noise=$!
        pids+=("$noise")
        sleep 1
      fi
      for s in $( ((r % 2)) && echo "direct app" || echo "app direct"); do
        c0=$(cpu)
        line=$("${app_cpu[@]}" "$zipf_get" -p "${port[$s]}" -c 10 -P 1 -k 1000 -r "$rate" \
          -d "$duration" -w "$warmup" --seed "$r")
        c1=$(cpu)
        echo "$r,$load,$s,$(field ops_s "$line"),$(field p50_ms "$line"),$(field p99_ms "$line"),$(field p999_ms "$line"),$(awk -v a="$c0" -v b="$c1" -v t="$duration" -v w="$warmup" 'BEGIN { printf "%.2f", (b - a) / (t + w) }')" \
          >>"$out/saturated.csv"
      done
      if [[ -n $noise ]]; then kill "$noise"; wait "$noise" 2>/dev/null || true; fi
    done
    log "saturated round $r done"
  done
fi

/usr/bin/python3 "$here/near_zipf_report.py" "$out"
if [[ $phases == *tracking* ]]; then
  /usr/bin/python3 "$here/tracking_cost.py" | tee "$out/tracking.txt"
fi
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); raw data in $out"
