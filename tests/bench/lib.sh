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

# proc_run_ns PID: the nanoseconds PID's live threads have run (/proc/PID/task/*/schedstat).
proc_run_ns() {
  local ns=0 t
  for t in /proc/"$1"/task/*/schedstat; do ns=$((ns + $(cut -d' ' -f1 "$t"))); done
  echo "$ns"
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

# start_redis PORT LOG [ARG...]: a plain redis-server on 127.0.0.1:PORT (on server_cpu, no
# persistence, log to LOG, extra ARGs appended), in `pids`; returns once it answers PING.
start_redis() {
  local port=$1 logfile=$2
  shift 2
  "${server_cpu[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --logfile "$logfile" "$@" &
  pids+=($!)
  wait_ping "$port"
}

# start_cluster OUT BUS_BASE PORT...: one cluster-enabled redis-server per PORT (on server_cpu,
# cluster bus on BUS_BASE+i: port + 10000 may be taken), made into a cluster of primaries only
# with redis-cli --cluster create; waits until every node says cluster_state:ok. Sets `seeds`
# ("127.0.0.1:PORT" each).
start_cluster() {
  local dir=$1 bus=$2 i=0 p deadline
  shift 2
  seeds=()
  for p in "$@"; do
    "${server_cpu[@]}" redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file "$dir/nodes-$p.conf" \
      --cluster-port $((bus + i)) --cluster-node-timeout 5000 --dir "$dir" \
      --logfile "$dir/node-$p.log" &
    pids+=($!)
    seeds+=("127.0.0.1:$p")
    i=$((i + 1))
  done
  for p in "$@"; do wait_ping "$p"; done
  log "creating the cluster"
  redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes \
    >"$dir/cluster-create.log" 2>&1 </dev/null
  deadline=$((SECONDS + 30))
  for p in "$@"; do
    until redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok'; do
      ((SECONDS < deadline)) || { log "node $p never reached cluster_state:ok"; exit 1; }
      sleep 0.1
    done
  done
}

# mget_key_sets NODE_PORT: two lines of ten keys for the cluster benchmarks' MGETs, asked of a
# 3-primary cluster: ten keys in ten slots spread 4/3/3 over the shards (sorted by port), then
# ten keys under three hash tags, one per shard, 4/3/3 (three slots).
mget_key_sets() {
  /usr/bin/python3 - "$1" <<'PYEOF'
import sys
sys.path.insert(0, "tests/support")
from cluster import key_slot
from harness import RespConn

with RespConn(int(sys.argv[1])) as c:
    ranges = [(r[0], r[1], r[2][1]) for r in c.cmd("CLUSTER", "SLOTS")]
ports = sorted({p for _, _, p in ranges})
assert len(ports) == 3, ranges
owner = lambda k: next(p for a, b, p in ranges if a <= key_slot(k) <= b)
quota = dict(zip(ports, (4, 3, 3)))
keys, i = [], 0
while len(keys) < 10:
    k = f"mget:{i}"
    if quota[owner(k)] > 0:
        quota[owner(k)] -= 1
        keys.append(k)
    i += 1
print(" ".join(keys))
tags, i = {}, 0
while len(tags) < 3:
    tags.setdefault(owner(f"t{i}"), f"t{i}")
    i += 1
print(" ".join(f"{{{tags[p]}}}:{j}" for p, n in zip(ports, (4, 3, 3)) for j in range(n)))
PYEOF
}

# callgrind_poke PID PORT OP: callgrind_control OP (--zero, --dump) on the valgrind of PID; PINGs
# on PORT wake the process so that it notices the request (a PING is under no limit or policy).
callgrind_poke() {
  local pid=$1 port=$2 op=$3
  callgrind_control "$op" "$pid" >/dev/null 2>&1 &
  local c=$!
  for _ in 1 2 3 4 5; do redis-cli -p "$port" ping >/dev/null; sleep 0.2; done
  wait "$c"
}

# callgrind_take PREFIX DEST REQUESTS: the newest callgrind dump PREFIX.* moved to DEST (for
# callgrind_annotate); prints its instructions per request.
callgrind_take() {
  local f ir
  f=$(ls -t "$1".* | head -n 1)
  mv "$f" "$2"
  ir=$(sed -n 's/^summary: *//p; s/^totals: *//p' "$2" | head -n 1 | cut -d' ' -f1)
  echo $((ir / $3))
}
