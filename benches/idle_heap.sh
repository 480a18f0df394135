#!/usr/bin/env bash
# What an idle HTTP/2-over-TLS connection keeps on the heap, by whom: DHAT (valgrind's
# heap profiler) runs anteroom while N clients each open a connection, make one request
# and stay, idle; the heap at its peak (all N held) is then summed per allocation site,
# divided by N. The RSS figure of `cargo bench --bench idle_connections` says how much;
# this says whose.
#
# Usage: [ANTEROOM_BIN=path] benches/idle_heap.sh [connections (400)]
# Needs: valgrind, python3, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400}
WORK=$(mktemp -d)
trap 'pkill -INT -f "$WORK/anteroom.toml" 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT
if [ -z "${ANTEROOM_BIN:-}" ]; then
  cargo build --release --quiet
  ANTEROOM_BIN=target/release/anteroom
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat > "$WORK/anteroom.toml" <<CONF
[listen]
http = "127.0.0.1:18301"
https = "127.0.0.1:18302"
admin = "127.0.0.1:18303"
tls_cert = "$WORK/cert.pem"
tls_key = "$WORK/key.pem"
[limits]
idle_timeout = "10m"
header_read_timeout = "10m"
[origin]
url = "http://127.0.0.1:9"
[tokens]
allow_random_keys = true
[[rooms]]
name = "bench"
paths = ["/q"]
CONF
RUST_LOG=warn TOKIO_WORKER_THREADS=1 valgrind --tool=dhat --dhat-out-file="$WORK/dhat.out" \
  "$ANTEROOM_BIN" run --config "$WORK/anteroom.toml" > "$WORK/anteroom.log" 2>&1 &
for _ in $(seq 300); do
  (exec 3<>/dev/tcp/127.0.0.1/18302) 2>/dev/null && break
  sleep 0.1
done

# The clients: TLS with ALPN h2, the preface, SETTINGS, one GET of a queue status (which
# the gateway answers itself), then held open. One at a time, so the peak is all of them.
python3 - "$N" <<'PY'
import socket, ssl, struct, sys, time
n = int(sys.argv[1])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload
path = b"/_anteroom/status?room=bench"
# HPACK: GET, https (static table), the path and the authority as literals.
head = b"\x82\x87" + bytes([0x04, len(path)]) + path + bytes([0x01, 9]) + b"localhost"
held = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 18302)), server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2", "no h2"
    s.settimeout(60)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 5, 1, head))
    got, done = b"", False
    while not done:
        chunk = s.recv(65536)
        assert chunk, "closed"
        got += chunk
        while len(got) >= 9 and len(got) >= 9 + int.from_bytes(got[:3], "big"):
            length, kind, flags = int.from_bytes(got[:3], "big"), got[3], got[4]
            stream = int.from_bytes(got[5:9], "big") & 0x7FFFFFFF
            if kind == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0, b""))  # acknowledge the server's SETTINGS
            done |= stream == 1 and flags & 1 and kind in (0, 1)
            got = got[9 + length:]
    held.append(s)
time.sleep(2)
PY
pkill -INT -f "$WORK/anteroom.toml"
for _ in $(seq 300); do
  grep -q "t-end" "$WORK/anteroom.log" && break
  sleep 0.1
done
sleep 1

python3 - "$WORK/dhat.out" "$N" <<'PY'
import json, re, sys
profile, n = json.load(open(sys.argv[1])), int(sys.argv[2])
frames = profile["ftbl"]
# The first frame that names a crate's own code, past the allocator and the collections.
plumbing = re.compile(r"^(malloc|calloc|realloc|memalign|posix_memalign|aws_lc_\w*OPENSSL_malloc)\b|"
                      r"library/(alloc|std|core)/|/bytes_mut\.rs|/slab/|src/lib\.rs:1095|UnknownInlinedFun|\?\?\?")
def site(stack):
    for index in stack:
        name = re.sub(r"^0x[0-9A-F]+: ", "", frames[index])
        if not plumbing.search(name):
            while (shorter := re.sub(r"<[^<>]*>", "", name)) != name:  # generics off
                name = shorter
            return name[:150]
    return "(unknown)"
sites = {}
for point in profile["pps"]:
    peak = point.get("gb", 0)
    if peak >= n * 64:  # at least 64 bytes per connection
        key = site(point["fs"])
        sites[key] = sites.get(key, 0) + peak
total = sum(point.get("gb", 0) for point in profile["pps"])
print(f"heap at the peak: {total} bytes, {total / n:.0f} per connection ({n} connections held)")
print("| bytes per connection | allocated in |\n|---|---|")
for key, peak in sorted(sites.items(), key=lambda kv: -kv[1])[:16]:
    print(f"| {peak / n:,.0f} | `{key}` |")
PY
