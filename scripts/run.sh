#!/usr/bin/env bash
# scripts/run.sh — the quick-start run command: build corral (release) and run it.
#
#   deps (apt) --> cmake --preset release + build
#       --> corral --print-addresses CONFIG: the listen and primary addresses, as corral resolves
#           them (an invalid config stops here, with corral's errors)
#       --> primary answers PING?  yes: use it
#                                  no, and it is local and needs no password: start redis-server
#                                  there (the embedded default upstream, no persistence),
#                                  stopped when we exit
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

# Ask corral for the addresses rather than reading the YAML here: one parser, and the same
# answer corral will act on (defaults, redis:// URLs, password_env included). Lines are
# "ROLE ADDRESS [password]"; ADDRESS is host:port, [v6]:port or unix:/path, never a secret.
addresses=$("$bin" --print-addresses "$config") ||
  { echo "run.sh: $config is not a valid corral config (errors above)" >&2; exit 1; }
listen='' primary='' up_password=0
while read -r role addr extra; do
  case $role in
    listen) [[ -n $listen ]] || listen=$addr ;;  # the first one is where clients connect
    primary)
      primary=$addr
      if [[ $extra == password ]]; then up_password=1; fi
      ;;
  esac
done <<<"$addresses"

up_host='' up_port='' up_sock=''
if [[ $primary == unix:* ]]; then
  up_sock=${primary#unix:}
else
  up_port=${primary##*:}
  up_host=${primary%:*}
  up_host=${up_host#[}
  up_host=${up_host%]}
fi

ping_upstream() {
  local target
  if [[ -n $up_sock ]]; then target=(-s "$up_sock"); else target=(-h "$up_host" -p "$up_port"); fi
  # NOAUTH/WRONGPASS still means a Redis is there; corral will authenticate itself.
  redis-cli "${target[@]}" ping 2>/dev/null |
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
  echo "run.sh: upstream $primary answers; using it"
elif [[ $up_password == 1 ]]; then
  # The embedded server could not be given a password run.sh never sees (corral does not print
  # secrets), so corral's AUTH would fail against it.
  echo "run.sh: warning: upstream $primary does not answer, and corral sends it a password;" \
    "start that Redis yourself (run.sh starts only a password-less one); corral will retry it" >&2
elif [[ -n $up_sock || $up_host == 127.* || $up_host == localhost || $up_host == ::1 ]]; then
  log=build/release/embedded-redis.log
  args=(--bind 127.0.0.1 --save '' --appendonly no --logfile "$(pwd)/$log")
  if [[ -n $up_sock ]]; then
    args+=(--port 0 --unixsocket "$up_sock" --unixsocketperm 700)
  else
    args+=(--port "$up_port")
    [[ $up_host == ::1 ]] && args=(--bind ::1 "${args[@]:2}")
  fi
  echo "run.sh: upstream $primary does not answer; starting an embedded redis-server (log: $log)"
  redis-server "${args[@]}" &
  redis_pid=$!
  for _ in $(seq 50); do
    ping_upstream && break
    kill -0 "$redis_pid" 2>/dev/null || { echo "run.sh: redis-server exited; see $log" >&2; exit 1; }
    sleep 0.1
  done
  ping_upstream || { echo "run.sh: embedded redis-server did not answer; see $log" >&2; exit 1; }
else
  echo "run.sh: warning: upstream $primary does not answer and is not local; corral will retry it" >&2
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
echo "run.sh: starting corral with $config (upstream $primary)"
echo "run.sh: connect with:  $connect      (Ctrl-C stops corral)"

# Not exec: the EXIT trap must stop the embedded Redis after corral exits. Ctrl-C reaches corral
# (same process group); bash waits for it, then runs the traps.
status=0
"$bin" --config "$config" "$@" || status=$?
exit "$status"
