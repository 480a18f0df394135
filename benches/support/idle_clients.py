"""Idle clients for the memory benchmarks (`benches/idle_heap.sh`, `benches/crowd.sh`).

    python3 idle_clients.py KIND PORT N HELD [PACE]

Opens N connections to 127.0.0.1:PORT, one after the other (at most PACE a second, if
given), each making one request for a cookie-less queue status, which the gateway answers
itself, and keeps them open, idle, as browsers on the queue page do between polls. KIND:
`plain` (HTTP/1.1), `tls` (HTTP/1.1 over TLS) or `h2` (HTTP/2 over TLS). Once all are
open it creates the file HELD. Whenever the file HELD.check appears, it writes to
HELD.open how many of its connections the server still holds open (then removes the
check), so a benchmark can tell that what it measured were open connections.
"""

import os
import socket
import ssl
import struct
import sys
import time

PATH = b"/_anteroom/status?room=bench"


def frame(type_, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


def h2_request(s):
    # HPACK: GET and https from the static table; the path and the authority as literals.
    head = b"\x82\x87" + bytes([0x04, len(PATH)]) + PATH + bytes([0x01, 9]) + b"localhost"
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 5, 1, head))
    got, done = b"", False
    while not done:
        chunk = s.recv(65536)
        assert chunk, "the server closed the connection"
        got += chunk
        while len(got) >= 9 and len(got) >= 9 + int.from_bytes(got[:3], "big"):
            length, type_, flags = int.from_bytes(got[:3], "big"), got[3], got[4]
            stream = int.from_bytes(got[5:9], "big") & 0x7FFFFFFF
            if type_ == 4 and not flags & 1:
                s.sendall(frame(4, 1, 0, b""))  # acknowledge the server's SETTINGS
            done |= bool(stream == 1 and flags & 1 and type_ in (0, 1))
            got = got[9 + length :]


def h1_request(s):
    s.sendall(b"GET " + PATH + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        assert chunk, "the server closed the connection"
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += s.recv(65536)


def still_open(s):
    """True while the server neither closed the connection nor sent anything on it: an idle
    connection hears nothing, and a server that ends one sends a TLS alert, a GOAWAY or
    the end of the stream."""
    s.setblocking(False)
    try:
        socket.socket.recv(s, 1, socket.MSG_PEEK)  # the raw bytes, past any TLS layer
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def main():
    kind, port, n, held_flag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    pace = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2" if kind == "h2" else "http/1.1"])
    held, started = [], time.monotonic()
    for i in range(n):
        if pace:
            time.sleep(max(0.0, started + i / pace - time.monotonic()))
        s = socket.create_connection(("127.0.0.1", port))
        if kind != "plain":
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.settimeout(60)
        (h2_request if kind == "h2" else h1_request)(s)
        held.append(s)
    open(held_flag, "w").close()
    while True:
        if os.path.exists(held_flag + ".check"):
            count = sum(still_open(s) for s in held)
            with open(held_flag + ".open", "w") as out:
                out.write(f"{count}\n")
            os.remove(held_flag + ".check")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
