#!/usr/bin/env bash
# Prints the gateway config of the idle-connection benchmarks (crowd.sh, idle_heap.sh):
# listeners on the given ports, TLS with DIR/cert.pem and DIR/key.pem, idle connections
# kept for 10 minutes, and one room whose cookie-less status the clients ask for.
# Usage: idle_config.sh HTTP_PORT HTTPS_PORT ADMIN_PORT DIR
cat <<CONF
[listen]
http = "127.0.0.1:$1"
https = "127.0.0.1:$2"
admin = "127.0.0.1:$3"
tls_cert = "$4/cert.pem"
tls_key = "$4/key.pem"
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
