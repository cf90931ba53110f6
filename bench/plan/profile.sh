#!/usr/bin/env bash
# Where does a no-change `plan --refresh all` spend its time? Generates an N-channel repository
# (limits lifted as in run.sh), converges it against a fresh sandbox, then records
# `plan --refresh all` (no latency fault) with `perf record -g` and prints the top of the
# report (self and children). Also counts the state store's write transactions with strace
# when it is installed. Outputs under bench/out/plan-profile/.
#
#   bash bench/plan/profile.sh [N=300] [BIN=bench/out/plan/bin/ytempire-debug]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
N="${1:-300}"
BIN="${2:-$ROOT/bench/out/plan/bin/ytempire-debug}"
[ -x "$BIN" ] || BIN="$ROOT/.build/debug/ytempire"
W="$ROOT/bench/out/plan-profile"
mkdir -p "$W"
command -v perf >/dev/null || { echo "profile: perf is required (apt-get install linux-perf)" >&2; exit 1; }

python3 bench/gen_repo.py "$W/repo" --channels "$N" --no-check > "$W/gen.log"
sed -i 's/^  requests: {perSecond: 200, perMinute: 5000}$/  requests: {perSecond: 1000000}/' "$W/repo/ratelimits/youtube-bench.yaml"
sed -i 's/^\(    callsPerMinute: \)1000\b/\1100000000/' "$W/repo/ratelimits/global.yaml"
git -C "$W/repo" init -q -b main && git -C "$W/repo" add -A
git -C "$W/repo" -c user.name=bench -c user.email=bench@ytempire.invalid -c commit.gpgsign=false commit -q -m gen

rm -rf "$W/state" "$W/ytempire.yaml"
"$BIN" sandbox --listen 127.0.0.1:0 --seed-from "$W/repo" --write-config "$W/ytempire.yaml" --state-dir "$W/state" > "$W/sandbox.log" 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null || true; wait $SB 2>/dev/null || true' EXIT
for _ in $(seq 1 3000); do grep -q '^policy:' "$W/ytempire.yaml" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^ytempire sandbox listening on \(http[^ ]*\).*/\1/p' "$W/sandbox.log" | head -1)
curl -sSf -X PUT "$URL/_sandbox/quota" -H 'Content-Type: application/json' --data '{"youtube":{"limit":2000000000}}' > /dev/null
echo "==> converge $N channels"
"$BIN" apply --config "$W/ytempire.yaml" --auto-approve --force > "$W/converge.out" 2>&1
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }   # utime+stime in s (USER_HZ 100)
echo "==> plan --refresh all (no perf): wall, the plan's CPU, the sandbox's CPU"
s0=$(cpu $SB); t0=$EPOCHREALTIME
/usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB max RSS' "$BIN" plan --config "$W/ytempire.yaml" --refresh all > "$W/plan0.out" 2> "$W/plan0.err" || true
tail -n 1 "$W/plan0.err"; echo "    sandbox CPU during the plan: $(python3 -c "print(round($(cpu $SB) - $s0, 2))") s"
echo "==> perf record: plan --refresh all"
perf record -F 499 -g -o "$W/perf.data" -- "$BIN" plan --config "$W/ytempire.yaml" --refresh all > "$W/plan.out" 2> "$W/perf.err"
perf report -i "$W/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -40 > "$W/self.txt" || true
perf report -i "$W/perf.data" --children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -60 > "$W/children.txt" || true
echo "--- self"; cut -c1-200 "$W/self.txt" | head -25 || true
echo "--- children"; cut -c1-200 "$W/children.txt" | head -45 || true
if command -v strace >/dev/null; then
  echo "==> strace -f -c: plan --refresh all (fsync/fdatasync/pwrite counts)"
  strace -f -c -o "$W/strace.txt" "$BIN" plan --config "$W/ytempire.yaml" --refresh all > /dev/null 2>&1 || true
  head -22 "$W/strace.txt" || true
  echo "==> strace: files the state store creates and deletes (SQLite rollback journal)"
  strace -f -e trace=unlink,unlinkat,fsync,fdatasync -o "$W/strace-files.txt" "$BIN" plan --config "$W/ytempire.yaml" --refresh all > /dev/null 2>&1 || true
  echo "    unlink(*-journal): $(grep -c 'unlink.*-journal"' "$W/strace-files.txt" || true), fsync/fdatasync: $(grep -cE 'fsync|fdatasync' "$W/strace-files.txt" || true) for $N channels"
  grep -E 'journal_mode|synchronous' "$W/strace-files.txt" | head -2 || true
fi
