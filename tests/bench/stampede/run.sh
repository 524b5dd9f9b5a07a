#!/usr/bin/env bash
# tests/bench/stampede/run.sh — corral's stampede protection under load, on this machine.
# A benchmark that prints tables, not a test: it passes or fails nothing (each table has a
# "target met" column instead).
#
#   build corral (release preset) --> start redis-server and tests/support/sample_origin.py
#     --> stampede.py (asyncio, raw RESP), which starts the corrals of each scenario itself:
#         storms: N simultaneous GETs of one missing key over M corrals, per single_flight mode
#         hot:    one key read in a loop for 3 TTL periods (stale_while_revalidate, xfetch)
#         revalidate: a hot key refreshed every TTL with / without ETag revalidation (bytes)
#         stale:  a SET through corral racing a fill, 1,000 rounds, 2 corrals (distributed)
#         storm5xx: the origin answers 503 for 4 s under 200 clients missing distinct keys,
#                 per origin setup (no retry, retry + budget, + breaker, + stale-if-error)
#     --> tables on stdout; raw CSVs, configs, corral logs and /metrics in OUT_DIR
#
# Environment (defaults in brackets):
#   STORMS [5] storms per scenario  NS ["100 1000"] clients  MS ["1 4"] corrals
#   MODES ["distributed local off"]  LATENCY_MS [50] origin latency for storms and hot key
#   HOT_CLIENTS [20]  HOT_M [2] corrals for the hot key  STALE_ROUNDS [1000]
#   STALE_LATENCY_MS [20]  STALE_CONTROL [200]: rounds of each stale control (0: none)
#   STORM5XX_CLIENTS [200]  STORM5XX_SECONDS [4]  STORM5XX_INTERVAL_MS [200]: each client's
#   GET period  STORM5XX_OPEN_FOR_MS [2000]: breaker.open_for
#   PHASES ["storms hot revalidate stale storm5xx"]  PORT_BASE [17460] (redis: PORT_BASE,
#   origin: PORT_BASE+1; corrals bind port 0)  CORRAL_BIN [build/release/cmd/corral/corral]
#   BENCH_BUILD [1]: build the release preset first  OUT_DIR [build/bench/stampede-<time>]
# The default run takes about 2.5 minutes on 2 cores, plus the build.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
root=$(pwd)
here=$root/tests/bench/stampede
py=/usr/bin/python3

storms=${STORMS:-5}
ns=${NS:-"100 1000"}
ms=${MS:-"1 4"}
modes=${MODES:-"distributed local off"}
latency_ms=${LATENCY_MS:-50}
hot_clients=${HOT_CLIENTS:-20}
hot_m=${HOT_M:-2}
stale_rounds=${STALE_ROUNDS:-1000}
stale_latency_ms=${STALE_LATENCY_MS:-20}
stale_control=${STALE_CONTROL:-200}
storm5xx_clients=${STORM5XX_CLIENTS:-200}
storm5xx_seconds=${STORM5XX_SECONDS:-4}
storm5xx_interval_ms=${STORM5XX_INTERVAL_MS:-200}
storm5xx_open_for_ms=${STORM5XX_OPEN_FOR_MS:-2000}
phases=${PHASES:-"storms hot revalidate stale storm5xx"}
port_base=${PORT_BASE:-17460}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
out=${OUT_DIR:-$root/build/bench/stampede-$(date +%Y%m%d-%H%M%S)}

redis_port=$port_base
origin_port=$((port_base + 1))

mkdir -p "$out"
log() { printf '[stampede %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Our servers must not be mistaken for something already listening there.
for p in "$redis_port" "$origin_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    log "port $p is in use: choose other ports with PORT_BASE (uses PORT_BASE, PORT_BASE+1)"
    exit 1
  fi
done

# redis-server, redis-cli, python3 and the build tools.
"$root/scripts/deps.sh" run

if [[ ${BENCH_BUILD:-1} == 1 ]]; then
  log "building corral (cmake --preset release && cmake --build --preset release)"
  if ! { cmake --preset release && cmake --build --preset release; } >"$out/build.log" 2>&1; then
    log "corral build failed (see $out/build.log)"
  fi
fi
if ! "$corral_bin" --version >/dev/null 2>&1; then
  log "corral is not available ($corral_bin --version failed): nothing to measure"
  exit 1
fi

# File descriptors: the driver holds max(NS) client sockets and a corral may hold them all
# (M=1) plus its origin connections. Raise the soft limit towards the hard one when short.
max_n=0
for n in $ns $storm5xx_clients; do if ((n > max_n)); then max_n=$n; fi; done
want_fds=$((max_n * 2 + 1024))
soft=$(ulimit -Sn)
if [[ $soft != unlimited ]] && ((soft < want_fds)); then
  hard=$(ulimit -Hn)
  if [[ $hard == unlimited ]] || ((hard >= want_fds)); then
    ulimit -Sn "$want_fds"
  else
    ulimit -Sn "$hard"
    log "warning: open-file limit $hard (hard) is below the $want_fds this run wants;" \
      "large storms may fail to connect (lower NS or raise ulimit -Hn)"
  fi
fi

# shellcheck source=../lib.sh
source "$here/../lib.sh"  # pids + cleanup traps, wait_ping

# wait_http PORT PATH [SECONDS]: wait until 127.0.0.1:PORT answers GET PATH with 200.
wait_http() {
  local deadline=$((SECONDS + ${3:-10}))
  until curl -fs --max-time 1 "http://127.0.0.1:$1$2" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "nothing answers http://127.0.0.1:$1$2"; return 1; }
    sleep 0.1
  done
}

# maxclients well above the driver's connections: corral keeps few Redis connections, but the
# stale phase's direct checks and any leftover connections must never hit Redis's limit.
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --maxclients 10000 --logfile "$out/redis.log" &
pids+=($!)
wait_ping "$redis_port"

"$py" "$root/tests/support/sample_origin.py" --port "$origin_port" --latency-ms "$latency_ms" \
  --quiet >"$out/origin.log" 2>&1 &
pids+=($!)
wait_http "$origin_port" /_stats

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"
  echo "kernel: $(uname -r)"
  echo "redis: $(redis-server --version | grep -o 'v=[^ ]*')"
  echo "corral: $("$corral_bin" --version 2>&1 | head -n 1)"
  echo "python: $("$py" --version 2>&1)"
  echo "open files: $(ulimit -Sn)"
  echo "storms=$storms ns=\"$ns\" ms=\"$ms\" modes=\"$modes\" latency_ms=$latency_ms" \
    "hot_clients=$hot_clients hot_m=$hot_m stale_rounds=$stale_rounds" \
    "stale_latency_ms=$stale_latency_ms storm5xx_clients=$storm5xx_clients" \
    "storm5xx_seconds=$storm5xx_seconds storm5xx_interval_ms=$storm5xx_interval_ms" \
    "storm5xx_open_for_ms=$storm5xx_open_for_ms phases=\"$phases\""
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "out: $out"
} | tee "$out/meta.txt" >&2
# Latency tails need an otherwise idle machine; origin-call counts do not.
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  log "warning: load average $(cut -d' ' -f1 /proc/loadavg) before start: other work on this" \
    "machine will make latencies noisy (origin-call and stale counts are unaffected)"
fi

# In the background so that the traps run at once on INT/TERM; cleanup's SIGTERM makes the
# driver stop its corrals before it exits.
"$py" "$here/stampede.py" --redis-port "$redis_port" --origin-port "$origin_port" \
  --corral-bin "$corral_bin" --out "$out" --phases "$phases" --storms "$storms" --ns "$ns" \
  --ms "$ms" --modes "$modes" --latency-ms "$latency_ms" --hot-clients "$hot_clients" \
  --hot-m "$hot_m" --stale-rounds "$stale_rounds" --stale-latency-ms "$stale_latency_ms" \
  --stale-control "$stale_control" --storm5xx-clients "$storm5xx_clients" \
  --storm5xx-seconds "$storm5xx_seconds" --storm5xx-interval-ms "$storm5xx_interval_ms" \
  --storm5xx-open-for-ms "$storm5xx_open_for_ms" >"$out/report.txt" &
driver=$!
pids+=("$driver")
rc=0
wait "$driver" || rc=$?

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/meta.txt"
echo
cat "$out/meta.txt"
cat "$out/report.txt"
exit "$rc"
