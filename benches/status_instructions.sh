#!/usr/bin/env bash
# User-space instructions per status poll of a waiting visitor (memory store), counted by
# callgrind: the queue's hot path, as benches/instructions.sh counts the proxy's. Machine
# noise moves req/s by ±25 % here; instruction counts barely move.
#
# Usage: [BASELINE_BIN=path] benches/status_instructions.sh [seconds]    Needs: valgrind, wrk, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-8}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"' EXIT
cargo build --release --quiet

cat > "$WORK/anteroom.toml" <<CONF
[listen]
http = "127.0.0.1:18382"
admin = "127.0.0.1:18392"
[origin]
url = "http://127.0.0.1:18381"
max_requests_per_second = 10000000
burst = 100000
[[rooms]]
name = "sale"
paths = ["/tickets"]
admit_per_minute = 1
abandon_after = "10m"
CONF

measure() { # name binary
  local name=$1 bin=$2
  valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg" "$bin" run --config "$WORK/anteroom.toml" \
    > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  until curl -sf -o /dev/null http://127.0.0.1:18392/readyz; do sleep 0.5; done
  # The first visitor takes the one admission; the second gets a cookie, joins, and waits.
  curl -s -o /dev/null http://127.0.0.1:18382/tickets/1 || true
  local cookie
  cookie=$(curl -s -D - -o /dev/null -H 'accept: application/json' 'http://127.0.0.1:18382/_anteroom/status?room=sale' \
    | awk -F'[ ;]' 'tolower($1) == "set-cookie:" {print $2}')
  curl -s -o /dev/null -X POST -H "cookie: $cookie" 'http://127.0.0.1:18382/_anteroom/join?room=sale'
  local url='http://127.0.0.1:18382/_anteroom/status?room=sale'
  wrk -t1 -c8 -d1s -H "cookie: $cookie" "$url" > /dev/null
  callgrind_control -z "$pid" > /dev/null 2>&1
  local n; n=$(wrk -t1 -c8 -d"${SECONDS_PER_RUN}s" -H "cookie: $cookie" "$url" | awk '/requests in/ {print $1}')
  local state; state=$(curl -s -H "cookie: $cookie" "$url" | sed 's/.*"state":"\([a-z]*\)".*/\1/')
  kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  local ir; ir=$(grep "refs" "$WORK/$name.err" | tr -d , | awk '{print $NF}')
  printf "%-9s %8s polls (state: %s)  %8d instructions/poll\n" "$name" "$n" "$state" $((ir / n))
  [ -n "${KEEP_PROFILES:-}" ] && cp "$WORK/$name.cg" "$KEEP_PROFILES/status-$name.cg"
  return 0
}
export RUST_LOG=info TOKIO_WORKER_THREADS=1
measure anteroom target/release/anteroom
if [ -n "${BASELINE_BIN:-}" ]; then
  measure baseline "$BASELINE_BIN"
fi
