#!/usr/bin/env bash
# Apply throughput with the state store in PostgreSQL vs SQLite (issue 19's target: >= 0.8x),
# on the same generated repository, each against a freshly seeded sandbox.
#
#   bash bench/state/run.sh [--channels N] [--no-build]
#
# For each store: seed a sandbox from the repository, then `apply --auto-approve --force`
# (every channel differs after seeding: the same converge for both), timed; throughput is
# the sandbox's call count over the wall time. PostgreSQL is a throwaway cluster (Debian's
# binaries, run as the `postgres` user, on 127.0.0.1 and a free port) stopped at the end.
# CONFIG=release builds and measures .build/release/ytempire; YTEMPIRE_BIN measures that binary.
# Output: bench/out/state/ (ignored by git), bench/out/state/state-bench.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/out/state"
CHANNELS="${BENCH_STATE_CHANNELS:-1000}"
BUILD=1
CONFIG="${CONFIG:-debug}"
while [ $# -gt 0 ]; do
  case "$1" in
    --channels) CHANNELS="${2:?--channels needs a number}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench-state: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$CHANNELS" =~ ^[1-9][0-9]*$ ]] || { echo "bench-state: --channels must be a positive integer" >&2; exit 2; }

die() { echo "bench-state: FAILED: $*" >&2; exit 1; }
step() { echo "==> $(date -u +%H:%M:%S) $*"; }
note() { echo "    $*"; }

rm -rf "$OUT"
mkdir -p "$OUT/logs"
LOGS="$OUT/logs"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet 'pyyaml>=6' || die "python3 needs PyYAML (bench/gen_repo.py)"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "PostgreSQL is not installed (make deps installs it)"

SRC_BIN="${YTEMPIRE_BIN:-}"
if [ -z "$SRC_BIN" ]; then
  if [ "$BUILD" = 1 ]; then
    step "swift build -c $CONFIG --product ytempire"
    swift build -c "$CONFIG" --product ytempire > "$LOGS/build.log" 2>&1 || { tail -n 40 "$LOGS/build.log" >&2; die "swift build failed"; }
  fi
  SRC_BIN="$ROOT/.build/$CONFIG/ytempire"
fi
[ -x "$SRC_BIN" ] || die "no binary at $SRC_BIN"
CONFIG="$("$SRC_BIN" debug build-info --field configuration 2>/dev/null || echo "$CONFIG")"
BIN="$OUT/ytempire-$CONFIG"
cp -f "$SRC_BIN" "$BIN"
note "binary: $SRC_BIN ($CONFIG)"

SB_PID=""
PGDIR=""
PGPORT=""
asPostgres=()
[ "$(id -u)" = 0 ] && asPostgres=(runuser -u postgres --)
cleanup() {
  if [ -n "$SB_PID" ]; then kill "$SB_PID" 2>/dev/null || true; wait "$SB_PID" 2>/dev/null || true; fi
  if [ -n "$PGDIR" ]; then "${asPostgres[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop > /dev/null 2>&1 || true; cp -f "$PGDIR/server.log" "$LOGS/postgres.log" 2>/dev/null || true; rm -rf "$PGDIR"; fi
}
trap cleanup EXIT

step "generated repository: $CHANNELS channels"
REPO="$OUT/repo"
python3 bench/gen_repo.py "$REPO" --channels "$CHANNELS" --no-check > "$LOGS/gen.log" 2>&1 || { tail -20 "$LOGS/gen.log" >&2; die "gen_repo.py failed"; }
# As bench/plan: lift the request-rate limits so the engine and the store, not the configured rate, bound the apply.
sed -i 's/^  requests: {perSecond: 200, perMinute: 5000}$/  requests: {perSecond: 1000000}/' "$REPO/ratelimits/youtube-bench.yaml"
sed -i 's/^\(    callsPerMinute: \)1000\b/\1100000000/' "$REPO/ratelimits/global.yaml"
git -C "$REPO" init -q -b main && git -C "$REPO" add -A
git -C "$REPO" -c user.name=bench -c user.email=bench@ytempire.invalid -c commit.gpgsign=false commit -q -m "generated"

step "PostgreSQL: a throwaway cluster on 127.0.0.1"
PGDIR=$(mktemp -d /tmp/ytempire-bench-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDIR"
"${asPostgres[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres -E UTF8 --locale=C > "$LOGS/initdb.log" 2>&1 || die "initdb failed"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# fsync stays on: the figure is what an operator's database would give.
"${asPostgres[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 -o "-h 127.0.0.1 -p $PGPORT -k $PGDIR ${BENCH_STATE_PG_OPTIONS:-}" start > "$LOGS/pg_ctl.log" 2>&1 || die "pg_ctl start failed"
"$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres ytempire

# cpu_seconds PID: CPU time (user + sys) of PID, its live descendants and its reaped children.
cpu_seconds() {
  python3 - "$1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[1]), [int(x) for x in fields[11:15]]  # ppid; utime stime cutime cstime
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit() and (st := stat(d)) is not None:
        procs[int(d)] = st
root = int(sys.argv[1])
total, todo = 0, [root]
while todo:
    pid = todo.pop()
    if pid not in procs:
        continue
    u, s, cu, cs = procs[pid][1]
    total += u + s + (cu + cs if pid == root else 0)
    todo += [p for p, (pp, _) in procs.items() if pp == pid]
print(f"{total / tick:.2f}")
PY
}
PG_PID=$(head -1 "$PGDIR/data/postmaster.pid")

# measure NAME EXTRA_CONFIG: seed a sandbox, apply --force, record wall, calls and the CPU
# time of ytempire, the sandbox and PostgreSQL (all three share the machine's cores).
measure() {
  local name="$1" extra="$2" w="$OUT/$1" url t0 t1 calls0 calls1 sb0 sb1 pg0 pg1
  mkdir -p "$w"
  "$BIN" sandbox --listen 127.0.0.1:0 --seed-from "$REPO" --write-config "$w/ytempire.yaml" --state-dir "$w/state" > "$w/sandbox.log" 2>&1 &
  SB_PID=$!
  for _ in $(seq 1 12000); do
    [ -s "$w/ytempire.yaml" ] && grep -q '^policy:' "$w/ytempire.yaml" && break
    kill -0 "$SB_PID" 2>/dev/null || die "the sandbox exited (log: $w/sandbox.log)"
    sleep 0.1
  done
  url=$(sed -n 's/^ytempire sandbox listening on \(http[^ ]*\).*/\1/p' "$w/sandbox.log" | head -1)
  curl -sS -f -X PUT -H 'Content-Type: application/json' --data '{"youtube":{"limit":2000000000}}' "$url/_sandbox/quota" > /dev/null
  printf '%s' "$extra" >> "$w/ytempire.yaml"
  calls0=$(curl -sS -f "$url/_sandbox/calls" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total",0))')
  step "$name: apply --auto-approve --force"
  sb0=$(cpu_seconds "$SB_PID"); pg0=$(cpu_seconds "$PG_PID")
  t0=$EPOCHREALTIME
  # The progress lines (stderr) are stamped with the seconds since the start as they arrive,
  # to time the YouTube actions alone (the store-bound phase, see below).
  { /usr/bin/time -v -o "$LOGS/$name.time" "$BIN" apply --config "$w/ytempire.yaml" --auto-approve --force 2>&1 1> "$LOGS/$name.out"; } \
    | python3 -u -c 'import sys, time
t0 = time.monotonic()
for line in sys.stdin: sys.stdout.write(f"{time.monotonic() - t0:9.3f} {line}")' > "$LOGS/$name.err" \
    || { tail -20 "$LOGS/$name.err" >&2; die "$name: apply failed"; }
  t1=$EPOCHREALTIME
  sb1=$(cpu_seconds "$SB_PID"); pg1=$(cpu_seconds "$PG_PID")
  calls1=$(curl -sS -f "$url/_sandbox/calls" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total",0))')
  kill "$SB_PID"; wait "$SB_PID" 2>/dev/null || true; SB_PID=""
  local wall rss cpu sbcpu pgcpu
  wall=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
  rss=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$LOGS/$name.time")
  cpu=$(sed -n 's/^\s*\(User\|System\) time (seconds): //p' "$LOGS/$name.time" | python3 -c 'import sys; print(f"{sum(map(float, sys.stdin.read().split())):.2f}")')
  sbcpu=$(python3 -c "print(f'{$sb1 - $sb0:.2f}')")
  pgcpu=$(python3 -c "print(f'{$pg1 - $pg0:.2f}')")
  # From the first to the last YouTube action's progress line: the actions whose every call
  # is charged, journalled and audited through the store, without the plan before them and the
  # other services' actions after them.
  local yt
  yt=$(python3 -c 'import sys
t = [float(l.split()[0]) for l in open(sys.argv[1]) if "] ok " in l and " youtube " in l]
print(f"{len(t)} {t[-1] - t[0]:.3f}" if len(t) > 1 else "0 0")' "$LOGS/$name.err")
  echo "$name $wall $((calls1 - calls0)) $rss $cpu $sbcpu $pgcpu $yt" >> "$OUT/results.txt"
  note "$name: $wall s, $((calls1 - calls0)) calls, max RSS $((rss / 1024)) MiB; CPU: ytempire $cpu s, sandbox $sbcpu s, PostgreSQL $pgcpu s"
}

measure sqlite ""
measure postgres "stateStore:
  url: \"postgres://postgres@127.0.0.1:$PGPORT/ytempire\"
"

python3 - "$OUT/results.txt" "$OUT/state-bench.json" "$CHANNELS" "$CONFIG" <<'PY'
import json, sys
rows = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1]) if l.strip()}
s_wall, s_calls, s_rss = float(rows["sqlite"][0]), int(rows["sqlite"][1]), int(rows["sqlite"][2])
p_wall, p_calls, p_rss = float(rows["postgres"][0]), int(rows["postgres"][1]), int(rows["postgres"][2])
cpu = {k: dict(zip(("ytempire", "sandbox", "postgresql"), map(float, v[3:6]))) for k, v in rows.items()}
yt = {k: (int(v[6]), float(v[7])) for k, v in rows.items()}
s_rate, p_rate = s_calls / s_wall, p_calls / p_wall
ratio = p_rate / s_rate
print(f"\napply --force of {sys.argv[3]} channels ({sys.argv[4]} binary):")
print(f"  SQLite state:     {s_wall:8.2f} s  {s_calls} calls  {s_rate:8.1f} calls/s  max RSS {s_rss // 1024} MiB")
print(f"  PostgreSQL state: {p_wall:8.2f} s  {p_calls} calls  {p_rate:8.1f} calls/s  max RSS {p_rss // 1024} MiB")
for k in ("sqlite", "postgres"):
    c = cpu[k]
    print(f"  CPU during the {k} run: ytempire {c['ytempire']:.2f} s, sandbox {c['sandbox']:.2f} s, PostgreSQL {c['postgresql']:.2f} s")
print(f"  ratio {ratio:.2f}x (target >= 0.80x): {'PASS' if ratio >= 0.8 else 'MISS'}")
yt_rate = {k: (n / s if s > 0 else 0.0) for k, (n, s) in yt.items()}
if yt_rate["sqlite"] > 0:
    print(f"  YouTube actions alone (the store-bound phase): SQLite {yt['sqlite'][0]} in {yt['sqlite'][1]:.2f} s "
          f"({yt_rate['sqlite']:.0f}/s), PostgreSQL {yt['postgres'][0]} in {yt['postgres'][1]:.2f} s "
          f"({yt_rate['postgres']:.0f}/s): {yt_rate['postgres'] / yt_rate['sqlite']:.2f}x")
json.dump({"channels": int(sys.argv[3]), "config": sys.argv[4],
           "sqlite": {"wall_s": s_wall, "calls": s_calls, "rss_kib": s_rss, "cpu_s": cpu["sqlite"],
                      "youtube_actions": yt["sqlite"][0], "youtube_phase_s": yt["sqlite"][1]},
           "postgres": {"wall_s": p_wall, "calls": p_calls, "rss_kib": p_rss, "cpu_s": cpu["postgres"],
                        "youtube_actions": yt["postgres"][0], "youtube_phase_s": yt["postgres"][1]}, "ratio": ratio},
          open(sys.argv[2], "w"), indent=2)
PY
