#!/usr/bin/env bash
# The relay beside nginx, in one run, on loopback only.
#
#   bench/relay/run.sh            # 1,000 streams vs nginx, then 10,000 through the relay
#   STREAMS=200 BIG=0 REPEAT=1 bench/relay/run.sh   # a quick look
#   RATE=60000000 PHASES="direct relay-h1 redis" bench/relay/run.sh   # with the rate limit on
#   BEFORE=/tmp/old-relay PHASES="direct nginx relay-h1 redis" bench/relay/run.sh   # a change, before → after
#
# A fast mock OpenAI upstream (200 deltas, 20 ms apart) answers every stream; a load
# generator checks every byte of every answer and measures, for each proxy in front of the
# same mock: time to first token (p99, minus the direct-to-mock p99), CPU per relayed delta
# (utime+stime from /proc/<pid>/stat over the run) and memory per open stream (RSS growth
# over the idle process / streams open at the sample). Then 10,000 streams (deltas 200 ms
# apart) through the relay, and through two instances sharing a redis-server (redis-big):
# the error rate; Redis memory per generation and the relays' errors by code go beside the
# table. The 1,000-stream phases run REPEAT times (default 3), interleaved, and the table takes
# each metric's median, so a burst of other work on a shared machine skews one repetition, not
# the result. With BEFORE (the path of another relay binary), relay-h1, relay and redis also
# run with it in each repetition, as relay-h1-before, relay-before and redis-before,
# alternating which goes first. Everything stops by itself; results go to bench/results/relay.md (gitignored) and
# are printed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STREAMS="${STREAMS:-1000}"
BIG="${BIG:-10000}"
DELTAS="${DELTAS:-200}"
REPEAT="${REPEAT:-3}"
# The per-IP request rate limit (per minute; 0: off). On, it is one more Redis call per
# request unless the store folds it into the admission.
RATE="${RATE:-0}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d /tmp/relay-bench.XXXXXX)"
OUT="$ROOT/bench/results/relay.md"
PIDS=()
PHASES="${PHASES:-direct nginx relay-h1 relay redis big redis-big}"
want() { [[ " $PHASES " == *" $1 "* ]]; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Every stream holds sockets: raise the descriptor limit as far as this machine allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "file descriptor limit: $(ulimit -n)"

command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx" >&2; exit 1; }

echo "building (release)…"
cargo build --release --quiet -p chunkwise-relay -p chunkwise-relay-bench --bins --manifest-path "$ROOT/Cargo.toml"
LOAD="$TARGET/release/relay-load"
# RELAY_BIN: measure another relay binary than the one just built.
RELAY="${RELAY_BIN:-$TARGET/release/chunkwise-relay}"
BEFORE="${BEFORE:-}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

MOCK_PORT="$(free_port)"
"$LOAD" mock --port "$MOCK_PORT" --deltas "$DELTAS" --interval-ms 20 2>"$WORK/mock.log" & PIDS+=($!)
wait_port "$MOCK_PORT"
# The same mock over HTTP/2 (h2c): with UPSTREAM_HTTP2=1 the relay multiplexes its streams
# over a few upstream connections. nginx cannot proxy to HTTP/2 upstreams.
MOCK_H2_PORT="$(free_port)"
"$LOAD" mock --h2 --port "$MOCK_H2_PORT" --deltas "$DELTAS" --interval-ms 20 2>"$WORK/mock-h2.log" & PIDS+=($!)
wait_port "$MOCK_H2_PORT"

run() { # label url timeout pids... -> $WORK/label.json
  local label="$1" url="$2" streams="$3" ramp="$4" timeout="$5" pids="$6"
  echo "• $label: $streams streams → $url"
  # DUMP_DIR: each stream's start, port and TTFT, per run (see relay-load's RELAY_LOAD_DUMP).
  ${DUMP_DIR:+env RELAY_LOAD_DUMP="$DUMP_DIR/$label-${REP:-1}.txt"} "$LOAD" run --label "$label" --url "$url" --streams "$streams" --deltas "$DELTAS" --ramp-ms "$ramp" \
    --timeout-s "$timeout" --pids "$pids" --clk-tck "$(getconf CLK_TCK)" | tee "$WORK/$label-${REP:-1}.json"
  sleep 1
}

NGINX_PORT="$(free_port)"
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
user root;
worker_processes auto;
worker_rlimit_nofile $(ulimit -n);
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
daemon off;
events { worker_connections $(( $(ulimit -n) - 100 )); }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 1024; }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://mock;
      proxy_buffering off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 300s;
    }
  }
}
EOF

start_relay() { # port upstream-port http2 -> RELAY_PID
  env ${RELAY_ENV:-} PORT="$1" UPSTREAM_BASE_URL="http://127.0.0.1:$2/v1" UPSTREAM_HTTP2="$3" UPSTREAM_MODEL=mock UPSTREAM_API_KEY=bench \
    RELAY_PER_IP_STREAMS=100000 RELAY_PER_IP_PER_MINUTE="$RATE" RELAY_PER_IP_BURST=1000000 RELAY_MAX_GENERATIONS=100000 \
    UPSTREAM_FIRST_BYTE_TIMEOUT_MS=60000 \
    "${VARIANT_BIN:-$RELAY}" 2>"$WORK/relay-$1.log" & RELAY_PID=$!; PIDS+=($RELAY_PID)
  wait_port "$1"
  sleep 0.3
}
redis_used() { redis-cli -p "$1" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
redis_note() { # port idle-bytes generations -> one line: Redis memory per finished generation
  local used keys
  used="$(redis_used "$1")"; keys="$(redis-cli -p "$1" dbsize | tr -d '\r')"
  echo "Redis used_memory after $3 generations of $DELTAS deltas: $(( (used - $2) / 1024 )) KiB over idle, $(( (used - $2) / $3 / 1024 )) KiB per generation ($keys keys)"
}
for REP in $(seq "$REPEAT"); do
  echo "— repetition $REP of $REPEAT"
  # 1. Straight to the mock: the TTFT floor the proxies are measured against.
  want direct && run direct "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$STREAMS" 1000 120 ""

  # 2. nginx, proxy_buffering off: the floor a pure proxy reaches.
  if want nginx; then
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & NGINX_MASTER=$!; PIDS+=($NGINX_MASTER)
    wait_port "$NGINX_PORT"
    sleep 0.5
    NGINX_PIDS="$(echo "$NGINX_MASTER" $(pgrep -P "$NGINX_MASTER") | tr ' ' ',')"
    run nginx "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$STREAMS" 1000 120 "$NGINX_PIDS"
    kill "$NGINX_MASTER"; wait "$NGINX_MASTER" 2>/dev/null || true
  fi

  # 3. The relay in front of the same mock: HTTP/1.1 upstream (the default), then HTTP/2.
  # With BEFORE, the other binary too (suffix -before), first in odd repetitions.
  VARIANTS=("")
  if [ -n "$BEFORE" ]; then
    if (( REP % 2 )); then VARIANTS=("-before" ""); else VARIANTS=("" "-before"); fi
  fi
  for V in "${VARIANTS[@]}"; do
    if [ -n "$V" ]; then VARIANT_BIN="$BEFORE"; else VARIANT_BIN=""; fi
    if want relay-h1; then
      RELAY_PORT="$(free_port)"
      start_relay "$RELAY_PORT" "$MOCK_PORT" 0
      run "relay-h1$V" "http://127.0.0.1:$RELAY_PORT/v1/chat/completions" "$STREAMS" 1000 120 "$RELAY_PID"
      kill "$RELAY_PID"
    fi
  done
  for V in "${VARIANTS[@]}"; do
    if [ -n "$V" ]; then VARIANT_BIN="$BEFORE"; else VARIANT_BIN=""; fi
    if want relay; then
      RELAY_PORT="$(free_port)"
      start_relay "$RELAY_PORT" "$MOCK_H2_PORT" 1
      run "relay$V" "http://127.0.0.1:$RELAY_PORT/v1/chat/completions" "$STREAMS" 1000 120 "$RELAY_PID"
      kill "$RELAY_PID"
    fi
  done
  VARIANT_BIN=""
  # 4. Two instances sharing a redis-server, HTTP/1.1 upstream; CPU counts both relays and Redis.
  for V in "${VARIANTS[@]}"; do
    if [ -n "$V" ]; then VARIANT_BIN="$BEFORE"; else VARIANT_BIN=""; fi
    if want redis && command -v redis-server >/dev/null; then
      REDIS_PORT="$(free_port)"
      redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 & REDIS_PID=$!; PIDS+=($REDIS_PID)
      wait_port "$REDIS_PORT"
      R1="$(free_port)"; RELAY_ENV="REDIS_URL=redis://127.0.0.1:$REDIS_PORT/" start_relay "$R1" "$MOCK_PORT" 0; P1=$RELAY_PID
      R2="$(free_port)"; RELAY_ENV="REDIS_URL=redis://127.0.0.1:$REDIS_PORT/" start_relay "$R2" "$MOCK_PORT" 0; P2=$RELAY_PID
      REDIS_IDLE="$(redis_used "$REDIS_PORT")"
      run "relay-redis$V" "http://127.0.0.1:$R1/v1/chat/completions,http://127.0.0.1:$R2/v1/chat/completions" "$STREAMS" 1000 120 "$P1,$P2,$REDIS_PID"
      # Finished generations stay in Redis until their TTL, so used_memory now holds all of them.
      if [ -z "$V" ]; then redis_note "$REDIS_PORT" "$REDIS_IDLE" "$STREAMS" >>"$WORK/redis-memory-$REP.txt"; fi
      kill "$P1" "$P2" "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
    fi
  done
  VARIANT_BIN=""
done
REP=1

# 4b. 10,000 concurrent streams through two instances + Redis, deltas 200 ms apart.
if want redis-big && [ "$BIG" -gt 0 ] && command -v redis-server >/dev/null; then
  SLOW_PORT="${SLOW_PORT:-$(free_port)}"
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$SLOW_PORT") 2>/dev/null; then
    "$LOAD" mock --h2 --port "$SLOW_PORT" --deltas "$DELTAS" --interval-ms 200 2>"$WORK/mock-slow.log" & PIDS+=($!)
    wait_port "$SLOW_PORT"
  fi
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis-big.log" 2>&1 & REDIS_PID=$!; PIDS+=($REDIS_PID)
  wait_port "$REDIS_PORT"
  REDIS_IDLE="$(redis_used "$REDIS_PORT")"
  R1="$(free_port)"; RELAY_ENV="REDIS_URL=redis://127.0.0.1:$REDIS_PORT/" start_relay "$R1" "$SLOW_PORT" 1; P1=$RELAY_PID
  R2="$(free_port)"; RELAY_ENV="REDIS_URL=redis://127.0.0.1:$REDIS_PORT/" start_relay "$R2" "$SLOW_PORT" 1; P2=$RELAY_PID
  run relay-redis-10k "http://127.0.0.1:$R1/v1/chat/completions,http://127.0.0.1:$R2/v1/chat/completions" "$BIG" 8000 $(( DELTAS / 5 + 60 )) "$P1,$P2,$REDIS_PID"
  redis_note "$REDIS_PORT" "$REDIS_IDLE" "$BIG" >>"$WORK/redis-memory-10k.txt"
  # Which errors the relays answered with, by code, from their own /metrics.
  for r in "$R1" "$R2"; do
    echo "relay :$r errors: $(curl -s "http://127.0.0.1:$r/metrics" | grep -E '^[a-z_]*error[a-z_]*\{' | tr '\n' ' ')"
  done >>"$WORK/redis-memory-10k.txt"
  kill "$P1" "$P2" "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
fi

# 5. 10,000 concurrent streams through the relay, deltas 200 ms apart.
if want big && [ "$BIG" -gt 0 ]; then
  SLOW_PORT="$(free_port)"
  "$LOAD" mock --h2 --port "$SLOW_PORT" --deltas "$DELTAS" --interval-ms 200 2>"$WORK/mock-slow.log" & PIDS+=($!)
  wait_port "$SLOW_PORT"
  RELAY_PORT="$(free_port)"
  start_relay "$RELAY_PORT" "$SLOW_PORT" 1
  run relay-10k "http://127.0.0.1:$RELAY_PORT/v1/chat/completions" "$BIG" 8000 $(( DELTAS / 5 + 60 )) "$RELAY_PID"
  kill "$RELAY_PID"
fi

mkdir -p "$(dirname "$OUT")"
{
  echo "# Relay benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(nginx -v 2>&1 | sed 's/.*: //')"
  echo
  "$LOAD" report "$WORK"/*.json
  for f in "$WORK"/redis-memory-*.txt; do [ -e "$f" ] && { echo; cat "$f"; }; done
  echo; echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT"
cat "$OUT"
