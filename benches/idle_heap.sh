#!/usr/bin/env bash
# What an idle client connection keeps on the gateway's heap, and whose code allocated it.
# `cargo bench --bench idle_connections` says how much memory a connection costs; this
# says where it goes. The gateway runs under valgrind's heap profiler (massif); N clients
# each open a connection, make one request (a cookie-less queue status, which the gateway
# answers itself) and stay, idle; the heap is read before them and again once they all
# wait (and HTTP/1 ones are parked), and the growth is split by the first function along
# each allocation's stack that is not the allocator or a collection, per connection.
#
# Usage: [KIND=h2|tls|plain] [ANTEROOM_BIN=path] benches/idle_heap.sh [connections (400)]
#   KIND: HTTP/2 over TLS (default), HTTP/1.1 over TLS, or plain HTTP/1.1.
# Needs: valgrind, python3, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400}
KIND=${KIND:-h2}
case "$KIND" in h2 | tls | plain) ;; *) echo "KIND is h2, tls or plain" >&2; exit 2 ;; esac
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT
if [ -z "${ANTEROOM_BIN:-}" ]; then
  cargo build --release --quiet
  ANTEROOM_BIN=target/release/anteroom
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
benches/support/idle_config.sh 18301 18302 18303 "$WORK" > "$WORK/anteroom.toml"
# --vgdb=yes lets `vgdb` ask for a heap snapshot while the gateway runs.
RUST_LOG=warn TOKIO_WORKER_THREADS=1 valgrind --tool=massif --vgdb=yes --threshold=0.1 \
  --massif-out-file="$WORK/massif.out" "$ANTEROOM_BIN" run --config "$WORK/anteroom.toml" \
  > "$WORK/anteroom.log" 2>&1 &
VALGRIND=$!
for _ in $(seq 300); do
  (exec 3<>/dev/tcp/127.0.0.1/18303) 2>/dev/null && break
  sleep 0.1
done

CLIENTS_PY=benches/support/idle_clients.py
PORT=$([ "$KIND" = plain ] && echo 18301 || echo 18302)
python3 "$CLIENTS_PY" "$KIND" "$PORT" 1 "$WORK/warm" &
WARM=$!
while [ ! -e "$WORK/warm" ]; do sleep 0.1; done
sleep 3
vgdb --pid="$VALGRIND" detailed_snapshot "$WORK/before" > /dev/null 2>&1
python3 "$CLIENTS_PY" "$KIND" "$PORT" "$N" "$WORK/held" &
CLIENTS=$!
while [ ! -e "$WORK/held" ]; do sleep 0.2; done
sleep 4 # past the second after which an idle HTTP/1 connection is parked
vgdb --pid="$VALGRIND" detailed_snapshot "$WORK/after" > /dev/null 2>&1
touch "$WORK/held.check"
while [ ! -e "$WORK/held.open" ]; do sleep 0.2; done
kill "$CLIENTS" "$WARM"
OPEN=$(cat "$WORK/held.open")
[ "$OPEN" = "$N" ] || { echo "only $OPEN of $N connections were still open: the figure would not be theirs" >&2; exit 1; }

python3 - "$WORK/before" "$WORK/after" "$N" "$KIND" <<'PY'
import re, sys
before_path, after_path, n, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
plumbing = re.compile(r"^(\(heap allocation functions\)|malloc|calloc|realloc|memalign|posix_memalign|"
                      r"aws_lc_\w*OPENSSL_malloc)\b|library/(alloc|std|core)/|/bytes_mut\.rs|"
                      r"src/lib\.rs:10\d\d|UnknownInlinedFun|\?\?\?")

def sites(path):
    """Bytes per site: the first frame on each stack that is not plumbing."""
    nodes, out, heap = [], {}, 0
    for line in open(path):
        if line.startswith("mem_heap_B="):
            heap = int(line.split("=")[1])
        m = re.match(r"^( *)n\d+: (\d+) (?:0x[0-9A-F]+: )?(.*)$", line.rstrip("\n"))
        if m:
            nodes.append((len(m.group(1)), int(m.group(2)), m.group(3)))
    def walk(i):
        depth, size, name = nodes[i]
        j, children = i + 1, []
        while j < len(nodes) and nodes[j][0] > depth:
            if nodes[j][0] == depth + 1:
                children.append(j)
            j += 1
        if depth > 0 and not plumbing.search(name) or not children:
            while (shorter := re.sub(r"<[^<>]*>", "", name)) != name:  # generics off
                name = shorter
            out[name[:140]] = out.get(name[:140], 0) + size
        else:
            for child in children:
                walk(child)
    walk(0)
    return heap, out

heap0, before = sites(before_path)
heap1, after = sites(after_path)
growth = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
label = {"h2": "HTTP/2 over TLS", "tls": "HTTP/1.1 over TLS", "plain": "HTTP/1.1"}[kind]
print(f"{label}: {n} idle connections, heap {heap0} -> {heap1} bytes: {(heap1 - heap0) / n:,.0f} per connection")
print("| bytes per connection | allocated in |\n|---|---|")
for key, size in sorted(growth.items(), key=lambda kv: -kv[1]):
    if size >= n * 48:
        print(f"| {size / n:,.0f} | `{key}` |")
PY
