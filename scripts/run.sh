#!/usr/bin/env bash
# scripts/run.sh — the quick-start run command: build corral (release) and run it.
#
#   deps (apt) --> cmake --preset release + build --> config: upstream.primary, listen
#       --> primary answers PING?  yes: use it
#                                  no, and it is local: start redis-server there (the embedded
#                                  default upstream, no persistence), stopped when we exit
#       --> print how to connect --> run corral in the foreground (Ctrl-C stops both)
#
# Environment: CORRAL_CONFIG (default config/corral.yaml). Extra arguments go to corral.
# CORRAL_DEMO=1: the stampede demo: config/demo.yaml, plus tests/support/sample_origin.py on
# 127.0.0.1:8080 (50 ms per request) as the origin of its fill policy, stopped when we exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
demo=${CORRAL_DEMO:-0}
if [[ $demo == 1 ]]; then
  config=${CORRAL_CONFIG:-config/demo.yaml}
else
  config=${CORRAL_CONFIG:-config/corral.yaml}
fi
bin=build/release/cmd/corral/corral

scripts/deps.sh run
cmake --preset release >/dev/null
cmake --build --preset release

[[ -f "$config" ]] || { echo "run.sh: config file '$config' not found" >&2; exit 1; }

# First value of a top-level (unindented) or nested key, e.g. `primary: 127.0.0.1:6379`, with
# quotes, brackets, braces and trailing comments removed. A flow list `listen: [a, b]` gives a;
# a block list (`listen:` then `  - a`) gives a too. Best effort: the config loader is the judge.
yaml_value() {
  local key=$1 indent=$2
  awk -v key="$key" -v indent="$indent" '
    function clean(v) {
      sub(/[ \t]+#.*$/, "", v); gsub(/[][{}"'"'"' \t]/, "", v); sub(/,.*$/, "", v); return v
    }
    found && /^[ \t]*-[ \t]*/ { v = $0; sub(/^[ \t]*-[ \t]*/, "", v); print clean(v); exit }
    found { exit }
    $0 ~ "^" indent key ":" {
      v = $0; sub("^" indent key ":[ \t]*", "", v); v = clean(v)
      if (v != "") { print v; exit }
      found = 1
    }' "$config"
}

# upstream.primary: "host:port", "[v6]:port", "unix:/path" or "redis://[user[:pass]@]host:port[/db]"
primary=$(yaml_value primary '[ \t]+')
primary=${primary:-127.0.0.1:6379}
# For messages: never print a password.
shown=$(sed -E 's#^(redis://[^:@/]*):[^@]*@#\1:***@#' <<<"$primary")
listen=$(yaml_value listen '')
listen=${listen:-127.0.0.1:6380}

up_auth=() up_host='' up_port='' up_sock='' up_pass=''
addr=$primary
if [[ $addr == redis://* ]]; then
  addr=${addr#redis://}
  addr=${addr%%/*}
  if [[ $addr == *@* ]]; then
    userinfo=${addr%@*}
    addr=${addr##*@}
    if [[ $userinfo == *:* ]]; then
      up_user=${userinfo%%:*}
      up_pass=${userinfo#*:}
      if [[ -n $up_user ]]; then
        up_auth=(--user "$up_user" --pass "$up_pass")
      else
        up_auth=(-a "$up_pass")
      fi
    fi
  fi
fi
if [[ $addr == unix:* ]]; then
  up_sock=${addr#unix:}
else
  up_port=${addr##*:}
  up_host=${addr%:*}
  up_host=${up_host#[}
  up_host=${up_host%]}
fi

ping_upstream() {
  local target
  if [[ -n $up_sock ]]; then target=(-s "$up_sock"); else target=(-h "$up_host" -p "$up_port"); fi
  # NOAUTH/WRONGPASS still means a Redis is there; corral will authenticate itself.
  redis-cli "${target[@]}" "${up_auth[@]}" --no-auth-warning ping 2>/dev/null |
    grep -qE '^(PONG|NOAUTH|WRONGPASS)'
}

redis_pid=''
origin_pid=''
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ -n $origin_pid ]]; then
    kill "$origin_pid" 2>/dev/null || true
    wait "$origin_pid" 2>/dev/null || true
    echo "run.sh: stopped the sample origin"
  fi
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    echo "run.sh: stopped the embedded redis-server"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ping_upstream; then
  echo "run.sh: upstream $shown answers; using it"
elif [[ -n $up_sock || $up_host == 127.* || $up_host == localhost || $up_host == ::1 ]]; then
  log=build/release/embedded-redis.log
  args=(--bind 127.0.0.1 --save '' --appendonly no --logfile "$(pwd)/$log")
  if [[ -n $up_sock ]]; then
    args+=(--port 0 --unixsocket "$up_sock" --unixsocketperm 700)
  else
    args+=(--port "$up_port")
    [[ $up_host == ::1 ]] && args=(--bind ::1 "${args[@]:2}")
  fi
  [[ -n $up_pass && ${#up_auth[@]} -eq 2 ]] && args+=(--requirepass "$up_pass")
  echo "run.sh: upstream $shown does not answer; starting an embedded redis-server (log: $log)"
  redis-server "${args[@]}" &
  redis_pid=$!
  for _ in $(seq 50); do
    ping_upstream && break
    kill -0 "$redis_pid" 2>/dev/null || { echo "run.sh: redis-server exited; see $log" >&2; exit 1; }
    sleep 0.1
  done
  ping_upstream || { echo "run.sh: embedded redis-server did not answer; see $log" >&2; exit 1; }
else
  echo "run.sh: warning: upstream $shown does not answer and is not local; corral will retry it" >&2
fi

if [[ $listen == unix:* ]]; then
  connect="redis-cli -s ${listen#unix:}"
else
  l_port=${listen##*:}
  l_host=${listen%:*}
  l_host=${l_host#[}
  l_host=${l_host%]}
  case $l_host in
    127.0.0.1 | localhost | 0.0.0.0 | '' | '*') connect="redis-cli -p $l_port" ;;
    *) connect="redis-cli -h $l_host -p $l_port" ;;
  esac
fi
if [[ $demo == 1 ]]; then
  /usr/bin/python3 tests/support/sample_origin.py --port 8080 --latency-ms 50 --quiet &
  origin_pid=$!
  for _ in $(seq 50); do
    curl -sf http://127.0.0.1:8080/_stats >/dev/null 2>&1 && break
    kill -0 "$origin_pid" 2>/dev/null || { echo "run.sh: the sample origin exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "run.sh: sample origin on http://127.0.0.1:8080 (50 ms per request; calls: /_stats)"
  echo "run.sh: try:  redis-benchmark -p 6380 -c 500 -n 500 GET user:42"
  echo "run.sh:  then: curl -s 127.0.0.1:8080/_stats   (one call for 500 concurrent misses)"
fi
echo "run.sh: starting corral with $config (upstream $shown)"
echo "run.sh: connect with:  $connect      (Ctrl-C stops corral)"

# Not exec: the EXIT trap must stop the embedded Redis after corral exits. Ctrl-C reaches corral
# (same process group); bash waits for it, then runs the traps.
status=0
"$bin" --config "$config" "$@" || status=$?
exit "$status"
