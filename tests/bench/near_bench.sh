#!/usr/bin/env bash
# tests/bench/near_bench.sh — the near cache (issue 12): GETs of a hot key set through corral with
# near_cache, through corral without it, and straight to Redis, in the same run. A benchmark that
# prints a table, not a test.
#
#   redis-server (CPU 0) <-- corral_plain (policy "hot", no near_cache; workers: 1, CPU 0)
#                        <-- corral_near  (the same policy with near_cache;  workers: 1, CPU 0)
#     --> the hot set: HOT keys key:000000000000 ... written straight to Redis
#     --> ROUNDS rounds, systems alternating, redis-benchmark alone on CPU 1: GET of
#         key:__rand_int__ with -r HOT (uniform over the hot set; redis-benchmark has no Zipf),
#         c=50, P=1 and P=16; around each run Redis's GET calls (INFO commandstats), so the share
#         of the app's GETs that Redis executed is known per system
#     --> medians, ratios to direct Redis, Redis's share of GETs
#
# Environment: ROUNDS [5]  REQUESTS [200000]  HOT [1000]  PORT_BASE [17800]
#   CORRAL_BIN [build/release/cmd/corral/corral]  BENCH_BUILD [1]  OUT_DIR [build/bench/near-<time>]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
here=$root/tests/bench
rounds=${ROUNDS:-5}
requests=${REQUESTS:-200000}
hot=${HOT:-1000}
port_base=${PORT_BASE:-17800}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
out=${OUT_DIR:-$root/build/bench/near-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { printf '[near-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

declare -A port=([direct]=$port_base [corral_plain]=$((port_base + 1))
  [corral_near]=$((port_base + 2)))
# shellcheck source=lib.sh
source "$here/lib.sh"
ports_free "${port[@]}"
prepare_bench "$out"

start_redis "${port[direct]}" "$out/redis.log"
for s in corral_plain corral_near; do
  near=""
  [[ $s == corral_near ]] && near=", near_cache: {max_age: 60s}"
  cat >"$out/$s.yaml" <<EOF
listen: [127.0.0.1:${port[$s]}]
workers: 1
upstream: {primary: 127.0.0.1:${port[direct]}}
policies:
  - {name: hot, match: "glob:key:*"$near}
EOF
  "${server_cpu[@]}" "$corral_bin" --config "$out/$s.yaml" >"$out/$s.log" 2>&1 &
  pids+=($!)
  wait_ping "${port[$s]}"
done
log "writing $hot hot keys"
"${client_cpu[@]}" redis-benchmark -p "${port[direct]}" -t set -r "$hot" -n $((hot * 20)) -d 32 \
  -c 50 -P 16 -q >/dev/null

gets() { redis-cli -p "${port[direct]}" info commandstats |
  sed -n 's/^cmdstat_get:calls=\([0-9]*\),.*/\1/p'; }

echo "round,system,P,rps,p50,p99,redis_gets" >"$out/runs.csv"
systems=(direct corral_plain corral_near)
for ((r = 1; r <= rounds; r++)); do
  for p in 1 16; do
    for ((i = 0; i < ${#systems[@]}; i++)); do
      s=${systems[$(((i + r) % ${#systems[@]}))]}
      before=$(gets)
      line=$("${client_cpu[@]}" redis-benchmark -p "${port[$s]}" -t get -r "$hot" -n "$requests" \
        -c 50 -P "$p" --csv 2>>"$out/redis-benchmark.err" | grep '^"GET"' | tr -d '"' |
        cut -d, -f2,5,7)
      after=$(gets)
      echo "$r,$s,$p,$line,$((after - before))" >>"$out/runs.csv"
    done
  done
  log "round $r done"
done

/usr/bin/python3 - "$out/runs.csv" "$requests" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = int(sys.argv[2])
def med(s, p, f):
    v = [float(r[f]) for r in rows if r["system"] == s and r["P"] == str(p)]
    return statistics.median(v) if v else float("nan")
print(f"{'P':>3} {'system':<13} {'ops/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'x direct':>8} "
      f"{'Redis ran':>10}")
for p in (1, 16):
    d = med("direct", p, "rps")
    for s in ("direct", "corral_plain", "corral_near"):
        rps = med(s, p, "rps")
        share = med(s, p, "redis_gets") / n
        print(f"{p:>3} {s:<13} {rps:>11,.0f} {med(s, p, 'p50'):>7.3f} {med(s, p, 'p99'):>7.3f} "
              f"{rps / d:>8.2f} {share:>9.1%}")
print("Redis ran: the share of the benchmark's GETs that Redis executed (INFO commandstats).")
EOF

# Invalidation delay: a write straight to Redis, then GETs through corral_near until the new
# value comes back (each GET one round trip: the figure bounds the delay from above).
/usr/bin/python3 - "${port[direct]}" "${port[corral_near]}" <<'EOF'
import sys, time
sys.path.insert(0, "tests/support")
from harness import RespConn
direct_port, near_port = int(sys.argv[1]), int(sys.argv[2])
delays, polls = [], 0
with RespConn(direct_port) as d, RespConn(near_port) as n:
    for i in range(2000):
        k = f"key:{i % 100:012d}"
        n.cmd("GET", k)
        n.cmd("GET", k)  # held in memory now
        v = f"v{i}".encode()
        assert d.cmd("SET", k, v) == "OK"
        t0 = time.perf_counter()
        while n.cmd("GET", k) != v:
            polls += 1
        delays.append(time.perf_counter() - t0)
delays.sort()
q = lambda p: delays[min(len(delays) - 1, int(p * len(delays)))] * 1e3
print(f"write straight to Redis -> new value read through corral_near: p50 {q(0.5):.3f} ms, "
      f"p99 {q(0.99):.3f} ms, max {delays[-1] * 1e3:.3f} ms ({len(delays)} writes, {polls} "
      f"extra GETs returned the old value)")
EOF

