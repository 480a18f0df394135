#!/usr/bin/env bash
# Throughput and latency of (a) the origin directly, (b) through anteroom, (c) through
# nginx as a plain proxy_pass reverse proxy with upstream keep-alive — in one run.
#
# CPU split on a 2-core machine: the proxy under test runs alone on CPU 1 (anteroom with
# one tokio worker, nginx with one worker process); the origin (nginx, one worker,
# `return 200`) and wrk share CPU 0. Both proxies log every request to a file.
#
# With H2=1 each round also sends h2load's HTTP/2-over-TLS load (as browsers speak) to a
# TLS listener of each proxy (a self-signed certificate made here): H2_REQUESTS requests
# (default 200,000) over the same number of connections, 10 streams each.
#
# Usage: [ACCESS_LOG=off] [ROUNDS=n] [H2=1] [NGINX_FIRST=1] [ANTEROOM_BIN=path] [BASELINE_BIN=path] [FEATURES=1] benches/proxy_compare.sh [duration-seconds] [connections]
# (NGINX_FIRST=1 loads nginx before anteroom in each round: the order matters, see
# docs/BENCHMARKS.md.)
# (ANTEROOM_BIN measures another build instead of this one; BASELINE_BIN measures a second
# build in the same rounds, e.g. the previous release, as "baseline". FEATURES=1 runs, as
# "features", the same build with the product's features on: the admin token (the
# console and its 2 s sampler), and an adaptive room with proof of work on /sale, which
# also puts every request to the shop under the adaptive in-flight limit; the load goes
# to / as for the others. FEATURES=fixed: the room admits at a fixed rate instead.)
# Needs: wrk, nginx (Debian packages; h2load from nghttp2-client and openssl for H2=1), a
# release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
ACCESS_LOG=${ACCESS_LOG:-on}
CONNECTIONS=${2:-64}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx: apt-get install wrk nginx-light" >&2; exit 1; }
ANTEROOM_BIN=${ANTEROOM_BIN:-target/release/anteroom}
[ "$ANTEROOM_BIN" = target/release/anteroom ] && cargo build --release --quiet

ORIGIN_PORT=18081 ANTEROOM_PORT=18082 NGINX_PORT=18083 ADMIN_PORT=18092 BASELINE_PORT=18084 BASELINE_ADMIN_PORT=18093
ANTEROOM_TLS_PORT=18085 NGINX_TLS_PORT=18086 BASELINE_TLS_PORT=18087
H2=${H2:-0}
H2_REQUESTS=${H2_REQUESTS:-200000}
if [ "$H2" = 1 ]; then
  command -v h2load >/dev/null && command -v openssl >/dev/null || { echo "H2=1 needs h2load and openssl: apt-get install nghttp2-client openssl" >&2; exit 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
  NGINX_TLS="listen 127.0.0.1:$NGINX_TLS_PORT ssl http2; ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;"
fi

cat > "$WORK/origin.conf" <<CONF
worker_processes 1;
pid $WORK/origin.pid;
error_log $WORK/origin-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    location / { default_type text/plain; return 200 "hello from the origin\n"; }
  }
}
CONF

cat > "$WORK/proxy.conf" <<CONF
worker_processes 1;
pid $WORK/proxy.pid;
error_log $WORK/proxy-error.log warn;
events { worker_connections 4096; }
http {
  access_log $( [ "$ACCESS_LOG" = on ] && echo "$WORK/nginx-access.log" || echo off );
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    ${NGINX_TLS:-}
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF

cat > "$WORK/anteroom.toml" <<CONF
[listen]
http = "127.0.0.1:$ANTEROOM_PORT"
admin = "127.0.0.1:$ADMIN_PORT"
[origin]
url = "http://127.0.0.1:$ORIGIN_PORT"
max_requests_per_second = 10000000
burst = 100000
max_in_flight = 4096
CONF

if [ "$H2" = 1 ]; then
  sed -i "/^\[listen\]/a https = \"127.0.0.1:$ANTEROOM_TLS_PORT\"\ntls_cert = \"$WORK/cert.pem\"\ntls_key = \"$WORK/key.pem\"" "$WORK/anteroom.toml"
fi
sed -e "s/$ANTEROOM_PORT/$BASELINE_PORT/; s/$ADMIN_PORT/$BASELINE_ADMIN_PORT/; s/$ANTEROOM_TLS_PORT/$BASELINE_TLS_PORT/" "$WORK/anteroom.toml" > "$WORK/baseline.toml"
SECOND=baseline
if [ -n "${FEATURES:-}" ]; then
  SECOND=features
  BASELINE_BIN=${BASELINE_BIN:-$ANTEROOM_BIN}
  cat >> "$WORK/baseline.toml" <<CONF
[admin]
token = "a-token-for-the-benchmark-only"
[[rooms]]
name = "sale"
paths = ["/sale"]
admit_per_minute = 600000
max_active_users = 1000000
challenge = "proof-of-work"
CONF
  # FEATURES=fixed: the same with a fixed-rate room (no adaptive in-flight limit).
  [ "$FEATURES" = fixed ] || printf 'admission = "adaptive"\ntarget_origin_latency = "250ms"\n' >> "$WORK/baseline.toml"
fi

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# CPU time (utime+stime, in clock ticks) used so far by the given processes.
cpu_ticks() { local t=0; for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo $t; }

run_wrk() { # name url pids-of-the-proxy...
  local name=$1 url=$2; shift 2
  local before; before=$(cpu_ticks "$@")
  taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" > "$WORK/$name.wrk"
  local after; after=$(cpu_ticks "$@")
  local rps p50 p99 total us
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.wrk")
  total=$(awk '/requests in/ {print $1}' "$WORK/$name.wrk")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$name.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$name.wrk")
  # CPU microseconds the proxy spent per request: steadier than req/s on a noisy VM.
  us=$(awk -v t=$((after - before)) -v n="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  errors=$(grep -E "Non-2xx|Socket errors" "$WORK/$name.wrk" | tr '\n' ' ' || true)
  printf "%-10s %12s %10s %10s %14s  %s\n" "$name" "$rps" "$p50" "$p99" "$us" "$errors"
  echo "$rps" > "$WORK/$name.rps"
  echo "$us" > "$WORK/$name.us"
}

run_h2load() { # name url pids-of-the-proxy...
  local name=$1 url=$2; shift 2
  local before; before=$(cpu_ticks "$@")
  taskset -c 0 h2load -n "$H2_REQUESTS" -c "$CONNECTIONS" -m 10 -t 1 "$url" > "$WORK/$name.h2"
  local after; after=$(cpu_ticks "$@")
  local rps done_ us
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$WORK/$name.h2")
  done_=$(awk '/^requests:/ {print $8}' "$WORK/$name.h2")
  us=$(awk -v t=$((after - before)) -v n="$done_" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  # "time for request:  min  max  mean  sd  +/- sd"
  read -r min max mean sd _ < <(awk '/^time for request:/ {print $4, $5, $6, $7, $8}' "$WORK/$name.h2")
  printf "%-10s %12s %10s %10s %10s %10s %14s  %s\n" "$name" "$rps" "$min" "$mean" "$max" "$sd" "$us" \
    "$(awk '/^requests:/ {print $8, "succeeded,", $10, "failed"}' "$WORK/$name.h2")"
}

taskset -c 0 nginx -c "$WORK/origin.conf" -g 'daemon off;' & wait_port $ORIGIN_PORT
ORIGIN_PIDS=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/origin.pid")" || pgrep -P "$(cat "$WORK/origin.pid")")
RUST_LOG=$( [ "$ACCESS_LOG" = on ] && echo info || echo warn ) TOKIO_WORKER_THREADS=1 taskset -c 1 "$ANTEROOM_BIN" run --config "$WORK/anteroom.toml" > "$WORK/anteroom.log" 2>&1 &
ANTEROOM_PID=$!
wait_port $ANTEROOM_PORT
if [ -n "${BASELINE_BIN:-}" ]; then
  RUST_LOG=$( [ "$ACCESS_LOG" = on ] && echo info || echo warn ) TOKIO_WORKER_THREADS=1 taskset -c 1 "$BASELINE_BIN" run --config "$WORK/baseline.toml" > "$WORK/baseline.log" 2>&1 &
  BASELINE_PID=$!
  wait_port $BASELINE_PORT
fi
taskset -c 1 nginx -c "$WORK/proxy.conf" -g 'daemon off;' & wait_port $NGINX_PORT
NGINX_PIDS=$(pgrep -P "$(cat "$WORK/proxy.pid")")

echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s; proxies pinned to CPU 1, origin + wrk to CPU 0; access logs $ACCESS_LOG"
printf "%-10s %12s %10s %10s %14s\n" target req/s p50 p99 "CPU us/req"
# Warm up pools and caches, then measure each target once.
for port in $ORIGIN_PORT $ANTEROOM_PORT ${BASELINE_BIN:+$BASELINE_PORT} $NGINX_PORT; do taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$port/" >/dev/null; done
ROUNDS=${ROUNDS:-1}
for round in $(seq "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "round $round"
  run_wrk origin   "http://127.0.0.1:$ORIGIN_PORT/" $ORIGIN_PIDS
  [ -n "${NGINX_FIRST:-}" ] && run_wrk nginx "http://127.0.0.1:$NGINX_PORT/" $NGINX_PIDS
  run_wrk anteroom "http://127.0.0.1:$ANTEROOM_PORT/" $ANTEROOM_PID
  [ -n "${BASELINE_BIN:-}" ] && run_wrk $SECOND "http://127.0.0.1:$BASELINE_PORT/" $BASELINE_PID
  if [ -z "${NGINX_FIRST:-}" ]; then run_wrk nginx "http://127.0.0.1:$NGINX_PORT/" $NGINX_PIDS; fi
  awk -v a="$(cat "$WORK/anteroom.rps")" -v n="$(cat "$WORK/nginx.rps")" -v ac="$(cat "$WORK/anteroom.us")" -v nc="$(cat "$WORK/nginx.us")" \
    'BEGIN { printf "anteroom / nginx: throughput ratio %.2f, CPU per request ratio %.2f\n", a / n, ac / nc }'
  if [ -n "${BASELINE_BIN:-}" ]; then
    awk -v a="$(cat "$WORK/anteroom.rps")" -v b="$(cat "$WORK/$SECOND.rps")" -v ac="$(cat "$WORK/anteroom.us")" -v bc="$(cat "$WORK/$SECOND.us")" -v s=$SECOND \
      'BEGIN { printf "anteroom / %s: throughput ratio %.2f, CPU per request ratio %.2f\n", s, a / b, ac / bc }'
  fi
  if [ "$H2" = 1 ]; then
    echo "h2load -n $H2_REQUESTS -c $CONNECTIONS -m 10 -t 1 (HTTP/2 over TLS): time for request"
    printf "%-10s %12s %10s %10s %10s %10s %14s\n" target req/s min mean max sd "CPU us/req"
    [ -n "${NGINX_FIRST:-}" ] && run_h2load nginx "https://127.0.0.1:$NGINX_TLS_PORT/" $NGINX_PIDS
    run_h2load anteroom "https://127.0.0.1:$ANTEROOM_TLS_PORT/" $ANTEROOM_PID
    [ -n "${BASELINE_BIN:-}" ] && run_h2load $SECOND "https://127.0.0.1:$BASELINE_TLS_PORT/" $BASELINE_PID
    if [ -z "${NGINX_FIRST:-}" ]; then run_h2load nginx "https://127.0.0.1:$NGINX_TLS_PORT/" $NGINX_PIDS; fi
  fi
done
