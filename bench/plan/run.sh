#!/usr/bin/env bash
# Benchmark the reconcile engine (plan/apply) against the sandbox, each figure next to its
# baseline measured or computed in the same run. See bench/README.md, "Plan and apply".
#
#   bash bench/plan/run.sh [--channels N] [--big M] [--latency MS] [--only LIST] [--no-build] [--keep-limits]
#
#   --channels N   channels of the small repository (default 1000, env BENCH_PLAN_CHANNELS):
#                  1. no-change `plan --refresh all` with MS ms latency per YouTube call;
#                  4. apply of N playlist changes (N/2 channels x 2 playlists) under 20 requests/s
#   --big M        channels of the large repository (default 10 x N, env BENCH_PLAN_BIG):
#                  2. full `plan --refresh all` vs incremental `plan` after a one-file commit;
#                  3. peak RSS of both
#   --latency MS   latency fault for 1. (default 20)
#   --only LIST    comma-separated subset of noop,apply,incremental (default: all)
#   --no-build     do not run `swift build` (use the existing binary)
#   --keep-limits  keep the generated request-rate limits (see "Limits" below)
#   --report-only  print the table again from bench/out/plan/results.txt (no measuring)
#
# CONFIG=release builds and measures .build/release/ytempire (default: debug). YTEMPIRE_BIN
# measures that binary instead. The binary is copied to bench/out/plan/bin/ first, so a
# concurrent rebuild cannot change it in the middle of the run.
#
# Limits: the generated repository copies the example's global RateLimit (callsPerMinute
# 1000) and gives youtube-bench requests {perSecond: 200, perMinute: 5000}. Those would make
# the large-repository converge take ~40 min and bound every plan by the configured rate,
# not by the engine. Unless --keep-limits, the bench lifts them (callsPerMinute 100000000,
# youtube-bench requests {perSecond: 1000000}); quota, concurrency 8, retries and the
# breaker stay as generated. Experiment 4 then sets youtube-bench to requests {perSecond: 20}.
#
# Exit status: 0 when everything ran (targets are PASS/MISS, not failures), 1 on errors,
# 2 on usage errors. Outputs: bench/out/plan/ (ignored by git), bench/out/plan/plan-bench.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/out/plan"
CHANNELS="${BENCH_PLAN_CHANNELS:-1000}"
BIG="${BENCH_PLAN_BIG:-}"
LATENCY_MS=20
ONLY="noop,apply,incremental"
BUILD=1
LIFT=1
REPORT_ONLY=0
CONFIG="${CONFIG:-debug}"

while [ $# -gt 0 ]; do
  case "$1" in
    --channels) CHANNELS="${2:?--channels needs a number}"; shift 2 ;;
    --channels=*) CHANNELS="${1#*=}"; shift ;;
    --big) BIG="${2:?--big needs a number}"; shift 2 ;;
    --big=*) BIG="${1#*=}"; shift ;;
    --latency) LATENCY_MS="${2:?--latency needs a number of ms}"; shift 2 ;;
    --latency=*) LATENCY_MS="${1#*=}"; shift ;;
    --only) ONLY="${2:?--only needs a list}"; shift 2 ;;
    --only=*) ONLY="${1#*=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep-limits) LIFT=0; shift ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "bench-plan: unknown argument: $1" >&2; exit 2 ;;
  esac
done
BIG="${BIG:-$((CHANNELS * 10))}"
for v in CHANNELS BIG LATENCY_MS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "bench-plan: ${v,,} must be a positive integer" >&2; exit 2; }
done
[ "$CHANNELS" -ge 2 ] || { echo "bench-plan: --channels must be >= 2" >&2; exit 2; }
case "$CONFIG" in debug|release) ;; *) echo "bench-plan: CONFIG must be debug or release" >&2; exit 2 ;; esac
want() { [[ ",$ONLY," == *",$1,"* ]]; }

die() { echo "" >&2; echo "bench-plan: FAILED: $*" >&2; exit 1; }
step() { echo "==> $(date -u +%H:%M:%S) $*"; }
note() { echo "    $*"; }

mkdir -p "$OUT/logs" "$OUT/bin"
LOGS="$OUT/logs"
RESULTS="$OUT/results.txt"   # "key value" lines, read by the report at the end
put() { echo "$1 $2" >> "$RESULTS"; }
report() {
python3 - "$RESULTS" "$OUT/plan-bench.json" <<'PY'
import json, math, sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition(" ")
    try: r[k] = float(v) if v not in ("", "nan") else None
    except ValueError: r[k] = v
def f(k): return r.get(k)
rows, targets = [], []
def add(metric, measured, baseline, result=None, value=None, target=None):
    rows.append((metric, measured, baseline, result or ""))
    if result: targets.append({"metric": metric, "value": value, "target": target, "result": result})
def pm(ok): return "PASS" if ok else "MISS"

print()
print(f"plan/apply benchmark: {int(f('channels'))} / {int(f('big'))} channels, {r.get('config')} binary, commit {r.get('commit')}"
      f" ({int(f('dirty_sources') or 0)} modified files under Sources/), load {r.get('load_start')} -> {r.get('load_end')}")
if f("noop_wall_s") is not None:
    calls, lat = f("noop_calls"), f("latency_ms") / 1000
    conc = f("noop_concurrency") or None
    gconc = f("noop_global_concurrency") or 50
    allowed = min(conc, gconc) if conc else gconc
    lb = calls / allowed * lat
    ratio = f("noop_wall_s") / lb if lb else math.inf
    add(f"1. no-change plan --refresh all, {int(f('channels'))} ch, {int(lat*1000)} ms/call", f"{f('noop_wall_s'):.2f} s",
        f"lower bound {lb:.2f} s = {int(calls)} calls / {int(allowed)} x {int(lat*1000)} ms", "", None, None)
    add("   ratio to the lower bound", f"{ratio:.2f}x", "<= 1.5x", pm(ratio <= 1.5), round(ratio, 3), 1.5)
    add("   API calls (channels.list + playlists.list)", f"{int(calls)} ({int(f('noop_channels_list'))} + {int(f('noop_playlists_list'))})",
        f"concurrency {int(allowed)} = min(youtube-bench {int(conc) if conc else 'unset'}, global apiRequests {int(gconc)})")
    add("   same plan, no latency (engine alone)", f"{f('noop_nolat_wall_s'):.2f} s", f"CPU {f('noop_nolat_cpu_s')} s")
if f("apply_wall_s") is not None:
    rate = f("apply_phase_rate")
    add(f"4. apply plan.json, {int(f('apply_planned_playlist_updates'))} playlist updates, 20 req/s",
        f"{f('apply_wall_s'):.2f} s", f"plan --out phase {f('apply_plan_wall_s'):.2f} s, {int(f('apply_plan_calls'))} calls")
    add("   apply: re-observation calls + playlists.update calls", f"{int(f('apply_observe_calls'))} + {int(f('apply_playlist_puts'))}",
        f"whole apply {f('apply_calls') / f('apply_wall_s'):.2f} calls/s")
    if rate is not None:
        add("   playlists.update rate (first to last update)", f"{rate:.2f} /s over {f('apply_phase_s'):.1f} s",
            ">= 19.0 /s (95% of 20)", pm(rate >= 19.0), rate, 19.0)
    else:
        add("   playlists.update rate (first to last update)", "n/a", "apply too short to sample (use more channels)")
    retried = max(0, int(f("apply_playlist_puts")) - int(f("apply_planned_playlist_updates")))
    n429 = retried + int(f("apply_429_in_output") or 0)
    add("   429 answers (retried PUTs + 429s reported)", f"{n429}",
        f"0 (faults set: {int(f('apply_faults') or 0)}; actions not ok: {int(f('apply_not_ok') or 0)})", pm(n429 == 0), n429, 0)
if f("full_wall_s") is not None:
    ratio = f("incr_wall_s") / f("full_wall_s")
    add(f"2. full plan --refresh all, {int(f('big'))} ch", f"{f('full_wall_s'):.2f} s", f"{int(f('full_calls'))} calls; sandbox seeding {f('big_seed_s'):.1f} s, converge {f('big_converge_s'):.1f} s")
    add("   incremental plan after a one-file commit", f"{f('incr_wall_s'):.2f} s", f"{ratio*100:.2f}% of full (<= 5%)", pm(ratio <= 0.05), round(ratio, 4), 0.05)
    add("   incremental plan API calls", f"{int(f('incr_calls'))} (+{int(f('incr_oauth'))} oauth)", "<= 3", pm(f("incr_calls") <= 3), f("incr_calls"), 3)
    for k, label in (("full_rss_kib", "3. peak RSS, full plan"), ("incr_rss_kib", "3. peak RSS, incremental plan")):
        mb = f(k) / 1024
        add(label, f"{mb:.1f} MiB", "<= 300 MB", pm(f(k) * 1024 <= 300e6), round(mb, 1), 300)
w = [max(len(x[i]) for x in rows + [("metric", "measured", "baseline / target", "")]) for i in range(3)]
print(f"{'metric':<{w[0]}}  {'measured':>{w[1]}}  {'baseline / target':<{w[2]}}  result")
for m, v, b, res in rows:
    print(f"{m:<{w[0]}}  {v:>{w[1]}}  {b:<{w[2]}}  {res}")
json.dump({"raw": r, "targets": targets, "rows": [dict(zip(("metric", "measured", "baseline", "result"), x)) for x in rows]},
          open(sys.argv[2], "w"), indent=2)
print(f"\n(bench/out/plan/plan-bench.json; logs in bench/out/plan/logs/)")
PY
}
if [ "$REPORT_ONLY" = 1 ]; then
  [ -s "$RESULTS" ] || die "no $RESULTS to report from"
  report
  exit 0
fi
: > "$RESULTS"
rm -f "$OUT/plan-bench.json"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')"

# ---------------------------------------------------------------- prerequisites
command -v curl >/dev/null || die "curl is required"
command -v git >/dev/null || die "git is required"
if [ ! -x /usr/bin/time ]; then
  step "installing GNU time (/usr/bin/time is missing)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq time >/dev/null || true
  [ -x /usr/bin/time ] || die "/usr/bin/time is required (Debian package 'time')"
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet 'pyyaml>=6' || die "python3 needs PyYAML (bench/gen_repo.py)"

# ---------------------------------------------------------------- the binary
SRC_BIN="${YTEMPIRE_BIN:-}"
if [ -z "$SRC_BIN" ]; then
  if [ "$BUILD" = 1 ]; then
    step "swift build -c $CONFIG --product ytempire"
    if ! swift build -c "$CONFIG" --product ytempire > "$LOGS/build.log" 2>&1; then
      tail -n 40 "$LOGS/build.log" >&2
      die "swift build -c $CONFIG --product ytempire failed (log: bench/out/plan/logs/build.log)"
    fi
    tail -n 1 "$LOGS/build.log" | sed 's/^/    /'
  fi
  SRC_BIN="$ROOT/.build/$CONFIG/ytempire"
fi
[ -x "$SRC_BIN" ] || die "no binary at $SRC_BIN (build it, or set YTEMPIRE_BIN)"
# The label comes from the binary itself: YTEMPIRE_BIN=.build/release/ytempire is a release
# build whatever CONFIG says.
BUILT="$("$SRC_BIN" debug build-info --field configuration 2>/dev/null || true)"
case "$BUILT" in
  debug|release) [ "$BUILT" = "$CONFIG" ] || note "CONFIG=$CONFIG, but $SRC_BIN is a $BUILT build: labelled $BUILT"; CONFIG="$BUILT" ;;
  *) note "$SRC_BIN does not say how it was built (no 'debug build-info'): labelled $CONFIG" ;;
esac
BIN="$OUT/bin/ytempire-$CONFIG"
cp -f "$SRC_BIN" "$BIN.tmp" && mv -f "$BIN.tmp" "$BIN"
put config "$CONFIG"
put commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
put dirty_sources "$(git status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)"
note "binary: $SRC_BIN ($CONFIG), measured as $BIN"

# ---------------------------------------------------------------- the sandbox
SB_PID=""
SB_URL=""
SAMPLER_PID=""
cleanup() {
  if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  if [ -n "$SB_PID" ]; then kill "$SB_PID" 2>/dev/null || true; wait "$SB_PID" 2>/dev/null || true; fi
  SB_PID=""; SAMPLER_PID=""
}
trap cleanup EXIT
trap 'echo "bench-plan: interrupted" >&2; exit 130' INT TERM

# start_sandbox REPO WORKDIR: seeds from REPO, writes WORKDIR/ytempire.yaml; prints the seconds it took.
start_sandbox() {
  local repo="$1" w="$2" t0 i
  rm -rf "$w/state" "$w/ytempire.yaml"
  mkdir -p "$w"
  t0=$EPOCHREALTIME
  "$BIN" sandbox --listen 127.0.0.1:0 --seed-from "$repo" --write-config "$w/ytempire.yaml" \
    --state-dir "$w/state" > "$w/sandbox.log" 2>&1 &
  SB_PID=$!
  for ((i = 0; i < 12000; i++)); do   # up to 20 min: seeding validates and seeds the whole repository
    [ -s "$w/ytempire.yaml" ] && grep -q '^policy:' "$w/ytempire.yaml" && break
    kill -0 "$SB_PID" 2>/dev/null || { tail -n 30 "$w/sandbox.log" >&2; die "the sandbox exited during start (log: $w/sandbox.log)"; }
    sleep 0.1
  done
  grep -q '^policy:' "$w/ytempire.yaml" 2>/dev/null || die "the sandbox wrote no configuration within 20 min"
  SEED_S=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')")
  SB_URL=$(sed -n 's/^ytempire sandbox listening on \(http[^ ]*\).*/\1/p' "$w/sandbox.log" | head -1)
  [ -n "$SB_URL" ] || die "cannot read the sandbox address from $w/sandbox.log"
  # The sandbox's YouTube quota defaults to 10,000 units/day; the RateLimit allows 10^9.
  admin PUT /quota '{"youtube":{"limit":2000000000}}' > /dev/null
  admin DELETE /faults > /dev/null
}
stop_sandbox() {
  if [ -n "$SB_PID" ]; then kill "$SB_PID" 2>/dev/null || true; wait "$SB_PID" 2>/dev/null || true; fi
  SB_PID=""
}
admin() {  # admin METHOD PATH [JSON]
  local args=(-sS -f -X "$1" "$SB_URL/_sandbox$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data "$3")
  curl "${args[@]}" || die "sandbox admin $1 $2 failed"
}
# calls FILE: saves GET /_sandbox/calls
calls() { admin GET /calls > "$1"; }
# calldiff BEFORE AFTER: "youtube oauth total playlistsPUT channelsGET playlistsGET" differences
calldiff() {
  python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def g(d, k): return d.get("calls", {}).get(k, 0)
em = lambda d, e: d.get("byEmulator", {}).get(e, 0)
keys = set(a.get("calls", {})) | set(b.get("calls", {}))
out = {"youtube": em(b, "youtube") - em(a, "youtube"), "oauth": em(b, "oauth") - em(a, "oauth"),
       "total": b.get("total", 0) - a.get("total", 0)}
for k in sorted(keys):
    d = g(b, k) - g(a, k)
    if d: out[k] = d
print(json.dumps(out))
PY
}
jget() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))" "$1" "$2"; }

# run_timed NAME OKCODES CMD...: /usr/bin/time -v around CMD; sets WALL (s, µs clock), RSS_KIB, RC.
run_timed() {
  local name="$1" ok="$2" t0 t1; shift 2
  echo "    \$ ${*/#$BIN/ytempire}" | sed "s#$OUT#bench/out/plan#g"
  t0=$EPOCHREALTIME
  set +e
  /usr/bin/time -v -o "$LOGS/$name.time" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err"
  RC=$?
  set -e
  t1=$EPOCHREALTIME
  WALL=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
  RSS_KIB=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$LOGS/$name.time")
  if [[ ",$ok," != *",$RC,"* ]]; then
    tail -n 30 "$LOGS/$name.out" "$LOGS/$name.err" >&2
    die "$name exited $RC (expected $ok); logs: bench/out/plan/logs/$name.{out,err,time}"
  fi
  note "$name: ${WALL} s, max RSS $((RSS_KIB / 1024)) MiB, exit $RC"
}

# make_repo N DIR: generated repository (limits lifted unless --keep-limits), committed on main.
make_repo() {
  local n="$1" dir="$2"
  python3 bench/gen_repo.py "$dir" --channels "$n" --no-check > "$LOGS/gen-$n.log" 2>&1 \
    || { tail -n 20 "$LOGS/gen-$n.log" >&2; die "bench/gen_repo.py failed"; }
  if [ "$LIFT" = 1 ]; then
    sed -i 's/^  requests: {perSecond: 200, perMinute: 5000}$/  requests: {perSecond: 1000000}/' "$dir/ratelimits/youtube-bench.yaml"
    sed -i 's/^\(    callsPerMinute: \)1000\b/\1100000000/' "$dir/ratelimits/global.yaml"
    grep -q 'perSecond: 1000000}' "$dir/ratelimits/youtube-bench.yaml" || die "could not lift youtube-bench's request limits"
    grep -q 'callsPerMinute: 100000000' "$dir/ratelimits/global.yaml" || die "could not lift the global callsPerMinute"
  fi
  git -C "$dir" init -q -b main
  git -C "$dir" add -A
  gcommit "$dir" "generated repository, $n channels"
}
gcommit() {
  GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
    git -C "$1" -c user.name=bench -c user.email=bench@ytempire.invalid -c commit.gpgsign=false commit -q -a -m "$2"
}
limits_summary() {  # what governs the YouTube calls of the generated channels
  python3 - "$1" <<'PY'
import sys, yaml
d = sys.argv[1]
rl = yaml.safe_load(open(f"{d}/ratelimits/youtube-bench.yaml"))["spec"]
g = yaml.safe_load(open(f"{d}/ratelimits/global.yaml"))["spec"].get("global", {})
print(f"youtube-bench concurrency={rl.get('concurrency')} requests={rl.get('requests')}; "
      f"global callsPerMinute={g.get('callsPerMinute')} apiRequests={g.get('concurrency', {}).get('apiRequests')}")
PY
}

SMALL_W="$OUT/small"
SMALL_REPO="$SMALL_W/repo"
BIG_W="$OUT/big"
BIG_REPO="$BIG_W/repo"
put channels "$CHANNELS"
put big "$BIG"
put latency_ms "$LATENCY_MS"

# ================================================================ 1. no-change plan, latency
if want noop || want apply; then
  step "small repository: $CHANNELS channels"
  make_repo "$CHANNELS" "$SMALL_REPO"
  note "$(limits_summary "$SMALL_REPO")"
  CONC=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['spec'].get('concurrency') or '')" "$SMALL_REPO/ratelimits/youtube-bench.yaml")
  GCONC=$(python3 -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['spec'].get('global',{}).get('concurrency',{}).get('apiRequests') or 50)" "$SMALL_REPO/ratelimits/global.yaml")
  step "sandbox seeded from it"
  start_sandbox "$SMALL_REPO" "$SMALL_W"
  note "sandbox at $SB_URL, seeded in $SEED_S s"
  put small_seed_s "$SEED_S"
  CFG=(--config "$SMALL_W/ytempire.yaml")

  step "converge once: apply --auto-approve --force (every channel differs after seeding)"
  calls "$LOGS/c0.json"
  run_timed small-converge 0 "$BIN" apply "${CFG[@]}" --auto-approve --force
  calls "$LOGS/c1.json"
  put small_converge_s "$WALL"
  note "calls: $(calldiff "$LOGS/c0.json" "$LOGS/c1.json")"

  if want noop; then
    step "1. no-change plan --refresh all, youtube=latency:${LATENCY_MS}ms"
    admin PUT /faults "{\"spec\":\"youtube=latency:${LATENCY_MS}ms\"}" > /dev/null
    # untimed warm-up? No: the real work of a no-change plan is the observation; one warm
    # plan (page cache, tokens already cached by the converge) would only re-do it.
    calls "$LOGS/n0.json"
    run_timed noop-plan 0 "$BIN" plan "${CFG[@]}" --refresh all --detailed-exitcode
    calls "$LOGS/n1.json"
    D=$(calldiff "$LOGS/n0.json" "$LOGS/n1.json")
    note "calls: $D"
    YT=$(jget "$D" youtube)
    put noop_wall_s "$WALL"
    put noop_calls "$YT"
    put noop_oauth "$(jget "$D" oauth)"
    put noop_channels_list "$(jget "$D" 'youtube GET /youtube/v3/channels')"
    put noop_playlists_list "$(jget "$D" 'youtube GET /youtube/v3/playlists')"
    put noop_concurrency "$CONC"
    put noop_global_concurrency "$GCONC"
    put noop_rss_kib "$RSS_KIB"
    # the same plan without latency: the engine's own CPU time for this plan
    admin DELETE /faults > /dev/null
    run_timed noop-plan-nolatency 0 "$BIN" plan "${CFG[@]}" --refresh all --detailed-exitcode
    put noop_nolat_wall_s "$WALL"
    grep -E '^\s*(User|System) time' "$LOGS/noop-plan-nolatency.time" | sed 's/^\s*/    /'
    put noop_nolat_cpu_s "$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$LOGS/noop-plan-nolatency.time")"
  fi

  # ============================================================== 4. apply under 20 req/s
  if want apply; then
    HALF=$((CHANNELS / 2))
    step "4. apply of $((HALF * 2)) playlist changes ($HALF channels x 2 playlists) under youtube-bench requests {perSecond: 20}"
    admin DELETE /faults > /dev/null
    python3 - "$SMALL_REPO" "$HALF" <<'PY'
import re, sys
from pathlib import Path
repo, half = Path(sys.argv[1]), int(sys.argv[2])
rl = repo / "ratelimits/youtube-bench.yaml"
t = rl.read_text()
t2 = re.sub(r"^  requests: \{[^}]*\}$", "  requests: {perSecond: 20}", t, flags=re.M)
assert t2 != t or "requests: {perSecond: 20}" in t, "no requests line in youtube-bench"
rl.write_text(t2)
changed = 0
for i in range(1, half + 1):
    p = repo / f"channels/ch-{i:05d}.yaml"
    s = p.read_text()
    s2, n = re.subn(r'^(      description: ")Everything about ', r"\1All about ", s, flags=re.M)
    assert n == 2, f"{p}: {n} playlist descriptions"
    p.write_text(s2)
    changed += n
print(f"changed {changed} playlist descriptions")
PY
    gcommit "$SMALL_REPO" "bench: ${HALF} channels x 2 playlist descriptions; youtube-bench 20 requests/s"
    CFG=(--config "$SMALL_W/ytempire.yaml")
    calls "$LOGS/a0.json"
    run_timed apply-plan 0,2 "$BIN" plan "${CFG[@]}" --out "$OUT/apply-plan.json" --detailed-exitcode
    calls "$LOGS/a1.json"
    D=$(calldiff "$LOGS/a0.json" "$LOGS/a1.json")
    note "plan phase calls: $D"
    put apply_plan_wall_s "$WALL"
    put apply_plan_calls "$(jget "$D" youtube)"
    PLANNED=$(python3 - "$OUT/apply-plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
acts = [a for a in p["actions"] if not a.get("deferred")]
pl = [a for a in acts for c in a["action"]["calls"] if c["operation"] == "playlists.update"]
other = [a for a in acts if a["action"]["driver"] == "youtube" and not any(c["operation"] == "playlists.update" for c in a["action"]["calls"])]
dfr = [a for a in p["actions"] if a.get("deferred")]
print(len(pl), len(other), len(dfr))
PY
)
    read -r PL_PLANNED OTHER_PLANNED DEFERRED <<< "$PLANNED"
    note "plan: $PL_PLANNED playlists.update actions, $OTHER_PLANNED other youtube actions, $DEFERRED deferred"
    put apply_planned_playlist_updates "$PL_PLANNED"
    put apply_planned_other "$OTHER_PLANNED"
    put apply_deferred "$DEFERRED"
    # sample the sandbox's call counters while apply runs: when did the first and the last
    # playlists.update arrive (this separates the apply's re-observation from its updates)
    ( while :; do
        c=$(curl -s "$SB_URL/_sandbox/calls" 2>/dev/null) || c=""
        [ -n "$c" ] && echo "$EPOCHREALTIME $(printf '%s' "$c" | python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["calls"]; print(c.get("youtube PUT /youtube/v3/playlists",0), d["byEmulator"].get("youtube",0))' 2>/dev/null)"
        sleep 0.1
      done ) > "$LOGS/apply-samples.txt" &
    SAMPLER_PID=$!
    run_timed apply 0 "$BIN" apply "${CFG[@]}" "$OUT/apply-plan.json" --auto-approve --force
    kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
    APPLY_END=$EPOCHREALTIME
    calls "$LOGS/a2.json"
    D=$(calldiff "$LOGS/a1.json" "$LOGS/a2.json")
    note "apply calls: $D"
    put apply_wall_s "$WALL"
    put apply_calls "$(jget "$D" youtube)"
    put apply_playlist_puts "$(jget "$D" 'youtube PUT /youtube/v3/playlists')"
    put apply_observe_calls "$(( $(jget "$D" 'youtube GET /youtube/v3/playlists') + $(jget "$D" 'youtube GET /youtube/v3/channels') ))"
    put apply_faults "$(admin GET /faults | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["rules"]))')"
    # apply's progress lines are "[i/n] ok|failed|deferred …"; a 429 shows up as a retry (more
    # PUTs than planned) or as a failed/deferred action naming the status (titles may contain "429")
    put apply_not_ok "$(grep -cE '^\[[0-9]+/[0-9]+\] (failed|deferred|skipped)' "$LOGS/apply.err" || true)"
    put apply_429_in_output "$(grep -cE 'HTTP 429|status 429|rateLimitExceeded|Too Many Requests' "$LOGS/apply.out" "$LOGS/apply.err" | awk -F: '{s += $NF} END {print s + 0}')"
    python3 - "$LOGS/apply-samples.txt" "$(jget "$D" 'youtube PUT /youtube/v3/playlists')" >> "$RESULTS" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 3: rows.append((float(f[0]), int(f[1]), int(f[2])))
final = int(sys.argv[2])
if not rows:
    print("apply_phase_s nan"); print("apply_phase_rate nan"); sys.exit()
base = rows[0][1]
# first sample that saw a playlists.update, and the first that saw all of them
first = next((r for r in rows if r[1] > base), None)
last = next((r for r in rows if r[1] >= base + final), None)
if first and last and last[0] > first[0]:
    n = last[1] - first[1]
    print(f"apply_phase_s {last[0] - first[0]:.3f}")
    print(f"apply_phase_rate {n / (last[0] - first[0]):.2f}")
    print(f"apply_phase_from_start_s {first[0] - rows[0][0]:.3f}")
else:
    print("apply_phase_s nan"); print("apply_phase_rate nan")
PY
    grep '^apply_phase' "$RESULTS" | sed 's/^/    /'
  fi
  stop_sandbox
  put load_mid "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')"
fi

# ================================================================ 2./3. incremental plan, RSS
if want incremental; then
  step "large repository: $BIG channels"
  make_repo "$BIG" "$BIG_REPO"
  note "$(limits_summary "$BIG_REPO")"
  step "sandbox seeded from it"
  start_sandbox "$BIG_REPO" "$BIG_W"
  note "sandbox at $SB_URL, seeded in $SEED_S s"
  put big_seed_s "$SEED_S"
  CFG=(--config "$BIG_W/ytempire.yaml")

  step "converge once: apply --auto-approve --force"
  calls "$LOGS/b0.json"
  run_timed big-converge 0 "$BIN" apply "${CFG[@]}" --auto-approve --force
  calls "$LOGS/b1.json"
  put big_converge_s "$WALL"
  put big_converge_rss_kib "$RSS_KIB"
  note "calls: $(calldiff "$LOGS/b0.json" "$LOGS/b1.json")"

  step "2./3. full plan --refresh all"
  calls "$LOGS/b2.json"
  run_timed big-full-plan 0 "$BIN" plan "${CFG[@]}" --refresh all --detailed-exitcode
  calls "$LOGS/b3.json"
  D=$(calldiff "$LOGS/b2.json" "$LOGS/b3.json")
  note "calls: $D"
  put full_wall_s "$WALL"
  put full_rss_kib "$RSS_KIB"
  put full_calls "$(jget "$D" youtube)"

  step "2./3. commit a change to ONE channel file, then the default plan (refresh=changed)"
  ONE="$BIG_REPO/channels/ch-00042.yaml"
  [ -f "$ONE" ] || ONE="$BIG_REPO/channels/ch-00001.yaml"
  python3 - "$ONE" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s2, n = re.subn(r'^(    description: ")', r'\1Now weekly. ', s, count=1, flags=re.M)
assert n == 1
open(p, "w").write(s2)
PY
  gcommit "$BIG_REPO" "bench: one channel's description"
  calls "$LOGS/b4.json"
  run_timed big-incremental-plan 0,2 "$BIN" plan "${CFG[@]}" --detailed-exitcode
  calls "$LOGS/b5.json"
  D=$(calldiff "$LOGS/b4.json" "$LOGS/b5.json")
  note "calls: $D"
  [ "$RC" = 2 ] || note "WARNING: the incremental plan reported no changes (exit $RC)"
  put incr_wall_s "$WALL"
  put incr_rss_kib "$RSS_KIB"
  put incr_calls "$(jget "$D" youtube)"
  put incr_oauth "$(jget "$D" oauth)"
  put incr_exit "$RC"
  stop_sandbox
fi
put load_end "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ',')"

# ================================================================ report
report
