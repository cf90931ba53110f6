#!/bin/sh
# Keep-alive throughput of CurlHTTPClient at 1, 8 and 64 concurrent tasks against the in-process
# NIO test server, next to `curl --parallel` against the same server in the same run.
#   bench/http/run.sh            # debug build (what `swift test` uses)
#   CONFIG=release bench/http/run.sh
# Results: bench/out/http.txt (one line per concurrency level).
set -eu
cd "$(dirname "$0")/../.."
CONFIG=${CONFIG:-debug}
REQUESTS=${REQUESTS:-20000}
mkdir -p bench/out
if [ "$CONFIG" = release ]; then
    # ResilienceTests use @testable imports: a release test build needs -enable-testing.
    swift build -c release --build-tests -Xswiftc -enable-testing
else
    swift build --build-tests
fi
YTEMPIRE_BENCH=1 YTEMPIRE_BENCH_REQUESTS=$REQUESTS YTEMPIRE_BENCH_OUT="$PWD/bench/out/http.txt" \
    swift test -c "$CONFIG" --skip-build --filter 'CurlHTTPTests.BenchmarkTests'
echo "--- bench/out/http.txt ($CONFIG, $(curl --version | head -1 | cut -d' ' -f1-2), $(nproc) cores)"
cat bench/out/http.txt
