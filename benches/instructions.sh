#!/usr/bin/env bash
# User-space instructions per proxied request, anteroom vs nginx, counted by callgrind.
# Unlike req/s, instruction counts barely move with machine noise, so this is the number
# to compare before and after a hot-path change. (Kernel work is not counted: both
# proxies make the same four socket calls per request.)
#
# Usage: [BASELINE_BIN=path] [FEATURES=1] benches/instructions.sh [seconds]      Needs: valgrind, wrk, nginx, curl.
# BASELINE_BIN counts another build too (e.g. the previous release), in the same run.
# FEATURES=1 adds what the product's features cost a proxied request: the same request
# with the admin token (console and its sampler), an adaptive room with proof of work on
# another path (which turns on the adaptive in-flight limit for every request to the
# shop); and a buyer's request inside a room, with an admission token, in a fixed room
# and in an adaptive one.
# H2=1 counts HTTP/2 over TLS instead, as browsers speak: h2load sends H2_REQUESTS
# (default 40,000) requests on 4 connections, 10 streams each, to a TLS listener of each
# proxy (a self-signed P-256 certificate made here; needs h2load from nghttp2-client and
# openssl). The four handshakes are counted too, ~200 instructions per request.
# KEEP_PROFILES=dir keeps the callgrind files, one per thread (NAME.cg-NN; the serving
# thread's is the large one): `callgrind_annotate --inclusive=no --auto=no FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"' EXIT
cargo build --release --quiet
H2=${H2:-0}
H2_REQUESTS=${H2_REQUESTS:-40000}
NGINX_TLS=""
if [ "$H2" = 1 ]; then
  command -v h2load >/dev/null && command -v openssl >/dev/null || { echo "H2=1 needs h2load and openssl: apt-get install nghttp2-client openssl" >&2; exit 1; }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
  NGINX_TLS="listen 127.0.0.1:18285 ssl http2; ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;"
fi

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
  server { listen 127.0.0.1:18283; $NGINX_TLS
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; } } }
CONF
cat > "$WORK/anteroom.toml" <<CONF
[listen]
http = "127.0.0.1:18282"
admin = "127.0.0.1:18292"
$([ "$H2" = 1 ] && printf 'https = "127.0.0.1:18284"\ntls_cert = "%s"\ntls_key = "%s"' "$WORK/cert.pem" "$WORK/key.pem" || true)
[origin]
url = "http://127.0.0.1:18281"
max_requests_per_second = 10000000
burst = 100000
max_in_flight = 4096
CONF

nginx -c "$WORK/origin.conf" -g 'daemon off;' &
sleep 0.5
measure() { # name port command...   (TOKEN_ROOM=name: first walk into that room, then send its admission token)
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/$name.cg" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  sleep 4
  local header=()
  if [ -n "${TOKEN_ROOM:-}" ]; then
    local cookie; cookie=$(curl -s -m 20 -o /dev/null -c - "http://127.0.0.1:$port/" | awk -v c="anteroom_t_$TOKEN_ROOM" '$6 == c {print $6 "=" $7}')
    [ -n "$cookie" ] || { echo "$name: no admission token from a walk-in" >&2; return 1; }
    header=(-H "Cookie: $cookie")
  fi
  # Warm up, then count from zero: start-up (the crypto library seeding its random
  # generator alone costs ~400M instructions) must not be spread over the requests.
  wrk -t1 -c8 -d1s "${header[@]}" "http://127.0.0.1:$port/" > /dev/null
  callgrind_control -z "$pid" > /dev/null 2>&1
  local n
  if [ "$H2" = 1 ]; then # the TLS listener is two ports up
    n=$(h2load -n "$H2_REQUESTS" -c 4 -m 10 -t 1 "${header[@]}" "https://127.0.0.1:$((port + 2))/" | awk '/^requests:/ {print $8}')
  else
    n=$(wrk -t1 -c8 -d"${SECONDS_PER_RUN}s" "${header[@]}" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  fi
  [ "${n:-0}" -gt 0 ] || { echo "$name: no request succeeded" >&2; return 1; }
  kill -INT "$pid" 2>/dev/null || true; kill -QUIT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  local ir; ir=$(grep "refs" "$WORK/$name.err" | tr -d , | awk '{print $NF}')
  printf "%-9s %8s requests  %8d instructions/request\n" "$name" "$n" $((ir / n))
  [ -n "${KEEP_PROFILES:-}" ] && cp "$WORK/$name.cg"* "$KEEP_PROFILES/"
  return 0
}
export RUST_LOG=info TOKIO_WORKER_THREADS=1
measure anteroom 18282 target/release/anteroom run --config "$WORK/anteroom.toml"
if [ -n "${BASELINE_BIN:-}" ]; then
  measure baseline 18282 "$BASELINE_BIN" run --config "$WORK/anteroom.toml"
fi
if [ -n "${FEATURES:-}" ]; then
  room() { # name paths admission-keys
    printf '[[rooms]]\nname = "%s"\npaths = [%s]\nmax_active_users = 1000000\nadmit_per_minute = 600000\n%s\n' "$1" "$2" "$3"
  }
  ADAPTIVE='admission = "adaptive"
target_origin_latency = "250ms"'
  { cat "$WORK/anteroom.toml"; printf '[admin]\ntoken = "a-token-for-the-benchmark-only"\n'
    room sale '"/sale"' "$ADAPTIVE
challenge = \"proof-of-work\""; } > "$WORK/features.toml"
  { cat "$WORK/anteroom.toml"; room sale '"/"' ""; } > "$WORK/fixed-room.toml"
  { cat "$WORK/anteroom.toml"; room sale '"/"' "$ADAPTIVE"; } > "$WORK/adaptive-room.toml"
  measure features 18282 target/release/anteroom run --config "$WORK/features.toml"
  TOKEN_ROOM=sale measure fixed-room 18282 target/release/anteroom run --config "$WORK/fixed-room.toml"
  TOKEN_ROOM=sale measure adaptive-room 18282 target/release/anteroom run --config "$WORK/adaptive-room.toml"
fi
measure nginx 18283 nginx -c "$WORK/proxy.conf"
