#!/usr/bin/env bash
# The seed's day on one machine: the fragile sample shop, and a crowd from
# `anteroom rehearse` — straight at the shop, or through anteroom with the shipped
# rehearsal configs (a fixed rate set too high, or adaptive admission).
#
# Usage: benches/seed_day.sh direct|fixed|adaptive|generator [crowd] [arrival-seconds] [out-dir]
#   e.g. benches/seed_day.sh adaptive 50000 60 /tmp/seed-day-adaptive
# `generator` measures the crowd itself: buyers that each send 20 requests with no think
# time, straight at the fast sample shop, arriving at once; its CPU time per request is
# what one core of the generator sustains.
# Prints the report's sentences; report.json and report.html land in out-dir. A release
# build is made first. The shop listens on 127.0.0.1:3901, the gateway on :3902 (admin
# :9092): nothing else may use those ports.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?direct, fixed or adaptive}
CROWD=${2:-1000}
ARRIVAL_S=${3:-10}
OUT=${4:-rehearsal-$MODE}
BIN=target/release/anteroom
cargo build --release --quiet
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

"$BIN" shop --fragile --listen 127.0.0.1:3901 >/dev/null 2>&1 &
ANTEROOM_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
export ANTEROOM_ADMIN_TOKEN
ARGS=(--crowd "$CROWD" --arrival spread --arrival-s "$ARRIVAL_S" --duration 60m
      --script config/rehearsal/buyer.toml --connections 1024 --out "$OUT")
case "$MODE" in
  direct) TARGET=(--direct http://127.0.0.1:3901) ;;
  generator)
    "$BIN" shop --listen 127.0.0.1:3903 >/dev/null 2>&1 &
    SCRIPT=$(mktemp)
    for _ in $(seq 20); do printf '[[step]]\npath = "/events/1"\n' >> "$SCRIPT"; done
    ARGS=(--crowd "$CROWD" --arrival at-once --arrival-s 0 --duration 10m --script "$SCRIPT" --connections 256 --out "$OUT")
    TARGET=(--direct http://127.0.0.1:3903)
    sleep 0.5 ;;
  fixed|adaptive)
    RUST_LOG=warn "$BIN" run --config "config/rehearsal/$MODE.toml" >/dev/null 2>&1 &
    TARGET=(http://127.0.0.1:3902 --admin http://127.0.0.1:9092) ;;
  *) echo "direct, fixed or adaptive" >&2; exit 2 ;;
esac
for _ in $(seq 50); do
  curl -fs -o /dev/null http://127.0.0.1:3901/ && { [ "$MODE" = direct ] || curl -fs -o /dev/null http://127.0.0.1:9092/readyz; } && break
  sleep 0.2
done
# The generator's own CPU, for buyers and requests per core.
/usr/bin/time -f "generator: %U s user, %S s system, %M KiB max RSS, %e s" \
  "$BIN" rehearse "${TARGET[@]}" "${ARGS[@]}"
