#!/bin/sh
# Keep-alive throughput of CurlHTTPClient at 1, 8 and 64 concurrent tasks, next to
# `curl --parallel --parallel-max N` (libcurl's own multi loop, in C) against the same server in
# the same run. Two servers: the in-process NIO test server, and nginx when installed
# (Debian's nginx-light; a C server, so the client side is what gets measured).
#   bench/http/run.sh                  # debug build (what `swift test` uses)
#   CONFIG=release bench/http/run.sh   # optimised (builds the whole package in release)
# Results: bench/out/http.txt
set -eu
cd "$(dirname "$0")/../.."
CONFIG=${CONFIG:-debug}
REQUESTS=${REQUESTS:-20000}
OUT="$PWD/bench/out"
mkdir -p "$OUT"
if [ "$CONFIG" = release ]; then
    # ResilienceTests use @testable imports: a release test build needs -enable-testing.
    swift build -c release --build-tests -Xswiftc -enable-testing
else
    swift build --build-tests
fi
run() {
    YTEMPIRE_BENCH=1 YTEMPIRE_BENCH_REQUESTS=$REQUESTS YTEMPIRE_BENCH_OUT="$OUT/http-$1.txt" \
        swift test -c "$CONFIG" --skip-build --filter 'CurlHTTPTests.BenchmarkTests' >"$OUT/http-$1.log" 2>&1 \
        || { cat "$OUT/http-$1.log"; exit 1; }
}
run nio
: >"$OUT/http-nginx.txt"
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    DIR=$(mktemp -d)
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$DIR/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $DIR;
    server { listen 127.0.0.1:$PORT; location / { return 200 "ok"; } }
}
CONF
    "$NGINX" -c "$DIR/nginx.conf" -p "$DIR" &
    NGINX_PID=$!
    trap 'kill $NGINX_PID 2>/dev/null; rm -rf "$DIR"' EXIT
    sleep 0.5
    YTEMPIRE_BENCH_URL="http://127.0.0.1:$PORT/" run nginx
fi
cat "$OUT/http-nio.txt" "$OUT/http-nginx.txt" >"$OUT/http.txt"
echo "--- bench/out/http.txt ($CONFIG build; $(curl --version | head -1 | cut -d' ' -f1-2); $(nproc) cores; load $(cut -d' ' -f1 /proc/loadavg))"
cat "$OUT/http.txt"
