#!/usr/bin/env bash
# A crowd of N idle client connections, as N browsers waiting on the queue page keep open
# between polls, held by as many gateway instances as it takes: one process here may open
# at most `ulimit -Hn` files (20,000 on the machines this was written on, and raising it
# needs a privilege the benchmark does not have), so PER_INSTANCE connections go to each
# instance, as they would be spread over a fleet behind a load balancer. Each instance's
# resident memory is read after one warm-up connection and again once its share of the
# crowd has arrived (PACE new connections a second per instance), made one request each
# and gone idle (HTTP/1 ones parked); every connection is checked to be still open, and
# the gateways' own count of parked connections is printed beside it.
#
# Usage: [KIND=plain|tls|h2] [PER_INSTANCE=16000] [PACE=200] [ANTEROOM_BIN=path]
#        benches/crowd.sh [N (100000)]
# Needs: python3, openssl, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
KIND=${KIND:-plain}
PER_INSTANCE=${PER_INSTANCE:-16000}
PACE=${PACE:-200}
case "$KIND" in plain | tls | h2) ;; *) echo "KIND is plain, tls or h2" >&2; exit 2 ;; esac
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((PER_INSTANCE + 500)) ]; then
  echo "the open-files limit is $(ulimit -n): lower PER_INSTANCE" >&2
  exit 2
fi
INSTANCES=$(((N + PER_INSTANCE - 1) / PER_INSTANCE))
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT
if [ -z "${ANTEROOM_BIN:-}" ]; then
  cargo build --release --quiet
  ANTEROOM_BIN=target/release/anteroom
fi
CLIENTS_PY=benches/support/idle_clients.py
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
port() { echo $((18500 + $1 * 3 + $2)); } # instance, 0 plain / 1 TLS / 2 admin

PIDS=()
for i in $(seq 0 $((INSTANCES - 1))); do
  benches/support/idle_config.sh "$(port "$i" 0)" "$(port "$i" 1)" "$(port "$i" 2)" "$WORK" > "$WORK/anteroom-$i.toml"
  RUST_LOG=warn "$ANTEROOM_BIN" run --config "$WORK/anteroom-$i.toml" > "$WORK/anteroom-$i.log" 2>&1 &
  PIDS+=($!)
done
client_port() { if [ "$KIND" = plain ]; then port "$1" 0; else port "$1" 1; fi; }
for i in $(seq 0 $((INSTANCES - 1))); do
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$(port "$i" 2)/healthz" > /dev/null 2>&1 && break
    sleep 0.1
  done
  python3 "$CLIENTS_PY" "$KIND" "$(client_port "$i")" 1 "$WORK/warm-$i" &
done
for i in $(seq 0 $((INSTANCES - 1))); do
  while [ ! -e "$WORK/warm-$i" ]; do sleep 0.1; done
done
sleep 2
BEFORE=()
for i in $(seq 0 $((INSTANCES - 1))); do BEFORE+=("$(rss_kib "${PIDS[$i]}")"); done

START=$(date +%s)
for i in $(seq 0 $((INSTANCES - 1))); do
  share=$(((N - i * PER_INSTANCE) < PER_INSTANCE ? N - i * PER_INSTANCE : PER_INSTANCE))
  echo "$share" > "$WORK/share-$i"
  python3 "$CLIENTS_PY" "$KIND" "$(client_port "$i")" "$share" "$WORK/held-$i" "$PACE" &
done
for i in $(seq 0 $((INSTANCES - 1))); do
  while [ ! -e "$WORK/held-$i" ]; do sleep 0.5; done
done
echo "the crowd of $N arrived in $(($(date +%s) - START)) s ($INSTANCES instances, $PACE new connections a second each)"
sleep 4 # past the second after which an idle HTTP/1 connection is parked
AFTER=()
for i in $(seq 0 $((INSTANCES - 1))); do
  AFTER+=("$(rss_kib "${PIDS[$i]}")")
  touch "$WORK/held-$i.check"
done

echo "| instance | connections | still open | parked (the gateway's gauge, with the warm-up connection) | RSS before → after | per connection |"
echo "|---|---|---|---|---|---|"
total_growth=0 total_open=0 total_parked=0
for i in $(seq 0 $((INSTANCES - 1))); do
  while [ ! -e "$WORK/held-$i.open" ]; do sleep 0.2; done
  share=$(cat "$WORK/share-$i") open=$(cat "$WORK/held-$i.open")
  parked=$(curl -s "http://127.0.0.1:$(port "$i" 2)/metrics" |
    awk '/^anteroom_client_connections\{state="parked"\}/ { print $2 }')
  growth=$((AFTER[i] - BEFORE[i]))
  total_growth=$((total_growth + growth)) total_open=$((total_open + open)) total_parked=$((total_parked + ${parked:-0}))
  echo "| $i | $share | $open | ${parked:-?} | ${BEFORE[$i]} → ${AFTER[$i]} KiB | $(awk -v g="$growth" -v n="$share" 'BEGIN { printf "%.1f KiB", g / n }') |"
done
echo "| **all** | **$N** | **$total_open** | **$total_parked** | **+$((total_growth / 1024)) MiB** | **$(awk -v g="$total_growth" -v n="$N" 'BEGIN { printf "%.1f KiB", g / n }')** |"
if [ "$total_open" != "$N" ]; then
  echo "only $total_open of $N connections were still open: the figure would not be theirs" >&2
  exit 1
fi
