#!/usr/bin/env bash
# tests/bench/tls_bench.sh — TLS through corral against TLS to Redis directly, with the plain
# pair in the same run for comparison. A benchmark that prints tables, not a test.
#
#   certificates (openssl CLI) --> redis-server with a plain port and a TLS port (CPU 0)
#     --> corral (CPU 0) with a plain and a tls:// listener; the TLS one reaches Redis over
#         rediss:// and the plain one over plain TCP (two corrals, so each path is pure)
#     --> throughput: ROUNDS rounds of GET and SET at P=1 and P=16 (c=50, 32-byte values),
#         against redis, corral (plain) and redis_tls, corral_tls (TLS on both sides), systems
#         alternating; redis-benchmark alone on CPU 1
#     --> handshakes: redis-benchmark --tls -k 0 (a new connection, so a full handshake, per
#         PING) against redis_tls and corral_tls, alternating
#     --> storm: tls_storm.py, a plain client's PING latency alone and while 2,000 TLS clients
#         connect to the same corral
#     --> report: medians, ratios to the direct system of the same kind
#
# Environment: ROUNDS [5]  REQUESTS [200000]  HANDSHAKES [5000]  PORT_BASE [17500] (..+5)
#   PARTS ["throughput handshakes storm"]: which measurements to run
#   CORRAL_BIN [build/release/cmd/corral/corral]  BENCH_BUILD [1]  OUT_DIR [build/bench/tls-<time>]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
here=$root/tests/bench
py=/usr/bin/python3
rounds=${ROUNDS:-5}
requests=${REQUESTS:-200000}
handshakes=${HANDSHAKES:-5000}
port_base=${PORT_BASE:-17500}
corral_bin=${CORRAL_BIN:-$root/build/release/cmd/corral/corral}
out=${OUT_DIR:-$root/build/bench/tls-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { printf '[tls-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

declare -A port=([redis]=$port_base [redis_tls]=$((port_base + 1)) [corral]=$((port_base + 2))
  [corral_tls]=$((port_base + 3)) [corral_admin]=$((port_base + 4)) [corral2]=$((port_base + 5)))
# shellcheck source=lib.sh
source "$here/lib.sh"
ports_free "${port[@]}"
prepare_bench "$out"

log "certificates"
"$py" -c "import sys; sys.path.insert(0, '$root/tests/support'); import certs; certs.Certs('$out')"
ca=$out/ca.crt
crt=$out/server.crt
key=$out/server.key

"${server_cpu[@]}" redis-server --port "${port[redis]}" --tls-port "${port[redis_tls]}" \
  --bind 127.0.0.1 --save '' --appendonly no --tls-cert-file "$crt" --tls-key-file "$key" \
  --tls-ca-cert-file "$ca" --tls-auth-clients no --logfile "$out/redis.log" &
pids+=($!)
wait_ping "${port[redis]}"

cat >"$out/corral_tls.yaml" <<EOF
listen: [127.0.0.1:${port[corral]}, tls://127.0.0.1:${port[corral_tls]}]
workers: 1
tls: {cert_file: $crt, key_file: $key}
upstream:
  primary: rediss://localhost:${port[redis_tls]}
  tls: {ca_file: $ca}
admin: {listen: 127.0.0.1:${port[corral_admin]}}
EOF
cat >"$out/corral_plain.yaml" <<EOF
listen: [127.0.0.1:${port[corral2]}]
workers: 1
upstream: {primary: 127.0.0.1:${port[redis]}}
EOF
"${server_cpu[@]}" "$corral_bin" --config "$out/corral_tls.yaml" >"$out/corral_tls.log" 2>&1 &
pids+=($!)
"${server_cpu[@]}" "$corral_bin" --config "$out/corral_plain.yaml" >"$out/corral_plain.log" 2>&1 &
pids+=($!)
wait_ping "${port[corral]}"
wait_ping "${port[corral2]}"

tls_args=(--tls --cacert "$ca" --sni localhost)
# run SYSTEM CLIENTS PIPELINE ROUND: appends "round,system,c,P,test,rps,p50,p99" rows.
run() {
  local system=$1 c=$2 p=$3 round=$4 args=() target
  case $system in
    redis) target=${port[redis]} ;;
    corral) target=${port[corral2]} ;;
    redis_tls)
      target=${port[redis_tls]}
      args=("${tls_args[@]}")
      ;;
    corral_tls)
      target=${port[corral_tls]}
      args=("${tls_args[@]}")
      ;;
  esac
  "${client_cpu[@]}" redis-benchmark -h 127.0.0.1 -p "$target" "${args[@]}" -t get,set -d 32 \
    -r 100000 -n "$requests" -c "$c" -P "$p" --csv 2>>"$out/redis-benchmark.err" |
    grep -E '^"(GET|SET)"' | tr -d '"' |
    awk -F, -v r="$round" -v s="$system" -v c="$c" -v p="$p" \
      '{print r "," s "," c "," p "," $1 "," $2 "," $5 "," $7}' >>"$out/throughput.csv"
}
parts=" ${PARTS:-throughput handshakes storm} "
systems=(redis corral redis_tls corral_tls)
[[ $parts == *" throughput "* ]] || rounds_throughput=0
for ((r = 1; r <= ${rounds_throughput:-rounds}; r++)); do
  for p in 1 16; do
    for ((i = 0; i < ${#systems[@]}; i++)); do
      run "${systems[$(((i + r) % ${#systems[@]}))]}" 50 "$p" "$r"
    done
  done
  log "throughput round $r done"
done

# Handshakes per second: -k 0 opens a new connection (a full handshake) for every request.
[[ $parts == *" handshakes "* ]] || rounds_handshakes=0
for ((r = 1; r <= ${rounds_handshakes:-rounds}; r++)); do
  for s in redis_tls corral_tls; do
    target=${port[$s]}
    rps=$("${client_cpu[@]}" redis-benchmark -h 127.0.0.1 -p "$target" "${tls_args[@]}" -k 0 \
      -t ping_inline -n "$handshakes" -c 20 --csv 2>>"$out/redis-benchmark.err" |
      grep '^"PING_INLINE"' | cut -d, -f2 | tr -d '"')
    echo "$r,$s,${rps:-0}" >>"$out/handshakes.csv"
  done
  log "handshakes round $r done"
done

# A plain client's latency, alone and while 2,000 TLS clients connect to the same corral. The
# storm's client runs on the server CPU: on the client CPU it would slow the measuring client
# itself, whatever corral does.
storm_cpu=()
[[ ${#server_cpu[@]} -gt 0 ]] && storm_cpu=(--storm-cpu 0)
# Twice: the storm's client as busy as corral (it takes CPU 0 from corral and Redis), and niced
# to 19, standing in for apps on other machines (it gets only what corral and Redis leave).
if [[ $parts == *" storm "* ]]; then
  for nice in 0 19; do
    "${client_cpu[@]}" "$py" "$here/tls_storm.py" --plain-port "${port[corral]}" \
      --tls-port "${port[corral_tls]}" --ca "$ca" --handshakes 2000 "${storm_cpu[@]}" \
      --storm-nice "$nice" >>"$out/storm.txt"
  done
fi

"$py" "$here/tls_report.py" "$out"
