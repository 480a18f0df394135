#!/usr/bin/env bash
# User-space instructions per proxied request, anteroom vs nginx, counted by callgrind.
# Unlike req/s, instruction counts barely move with machine noise, so this is the number
# to compare before and after a hot-path change. (Kernel work is not counted: both
# proxies make the same four socket calls per request.)
#
# Usage: [BASELINE_BIN=path] benches/instructions.sh [seconds]      Needs: valgrind, wrk, nginx.
# BASELINE_BIN counts another build too (e.g. the previous release), in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"' EXIT
cargo build --release --quiet

cat > "$WORK/origin.conf" <<CONF
worker_processes 1; pid $WORK/origin.pid; error_log $WORK/origin-error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18281; location / { default_type text/plain; return 200 "hello from the origin\n"; } } }
CONF
cat > "$WORK/proxy.conf" <<CONF
worker_processes 1; master_process off; daemon off; pid $WORK/proxy.pid; error_log $WORK/proxy-error.log warn;
events { worker_connections 1024; }
http { access_log $WORK/access.log; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:18281; keepalive 128; }
  server { listen 127.0.0.1:18283;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; } } }
CONF
cat > "$WORK/anteroom.toml" <<CONF
[listen]
http = "127.0.0.1:18282"
admin = "127.0.0.1:18292"
[origin]
url = "http://127.0.0.1:18281"
max_requests_per_second = 10000000
burst = 100000
max_in_flight = 4096
CONF

nginx -c "$WORK/origin.conf" -g 'daemon off;' &
sleep 0.5
measure() { # name port command...
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  sleep 4
  # Warm up, then count from zero: start-up (the crypto library seeding its random
  # generator alone costs ~400M instructions) must not be spread over the requests.
  wrk -t1 -c8 -d1s "http://127.0.0.1:$port/" > /dev/null
  callgrind_control -z "$pid" > /dev/null 2>&1
  local n; n=$(wrk -t1 -c8 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  kill -INT "$pid" 2>/dev/null || true; kill -QUIT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  local ir; ir=$(grep "refs" "$WORK/$name.err" | tr -d , | awk '{print $NF}')
  printf "%-9s %8s requests  %8d instructions/request\n" "$name" "$n" $((ir / n))
  [ -n "${KEEP_PROFILES:-}" ] && cp "$WORK/$name.cg" "$KEEP_PROFILES/$name.cg"
  return 0
}
export RUST_LOG=info TOKIO_WORKER_THREADS=1
measure anteroom 18282 target/release/anteroom run --config "$WORK/anteroom.toml"
if [ -n "${BASELINE_BIN:-}" ]; then
  measure baseline 18282 "$BASELINE_BIN" run --config "$WORK/anteroom.toml"
fi
measure nginx 18283 nginx -c "$WORK/proxy.conf"
