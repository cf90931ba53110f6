#!/usr/bin/env bash
# Benchmark `ytempire validate` against the libyaml parsing floor and the PyYAML+jsonschema
# baseline over one generated repository. See bench/README.md.
#
#   bash bench/run.sh [--channels N] [--runs R] [--regen] [--no-build] [--tools LIST]
#
#   --channels N   channels in the generated repo (default 10000; e.g. 500 for a smoke run)
#   --runs R       timed runs per tool (default 3); the median wall and the max RSS are reported
#   --regen        regenerate bench/out/repo-N even if it exists
#   --no-build     use the existing release binary (YTEMPIRE_BIN overrides its path)
#   --tools LIST   comma-separated subset of validate,floor,python (default: all three)
#
# Environment: YTEMPIRE_BIN (binary to measure), BENCH_EXAMPLE (example repo to build on,
# default examples/empire), BENCH_SCHEMAS (schema dir, default schemas/).
#
# Exit status: 0 when every tool ran and succeeded (targets are reported PASS/MISS but do not
# fail the run); 1 when a build, the generator or a tool failed (validate must exit 0 on the
# generated repo); 2 on usage errors.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/out"
CHANNELS=10000
RUNS=3
REGEN=0
BUILD=1
TOOLS="validate,floor,python"

while [ $# -gt 0 ]; do
  case "$1" in
    --channels) CHANNELS="${2:?--channels needs a number}"; shift 2 ;;
    --channels=*) CHANNELS="${1#*=}"; shift ;;
    --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --regen) REGEN=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --tools) TOOLS="${2:?--tools needs a list}"; shift 2 ;;
    --tools=*) TOOLS="${1#*=}"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ "$CHANNELS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --channels must be a positive integer" >&2; exit 2; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --runs must be a positive integer" >&2; exit 2; }
want() { [[ ",$TOOLS," == *",$1,"* ]]; }

die() { echo "" >&2; echo "bench: FAILED: $*" >&2; exit 1; }
step() { echo "==> $*"; }

mkdir -p "$OUT/logs"
REPO="$OUT/repo-$CHANNELS"
rm -f "$OUT/validate-bench.json"  # never leave figures of an earlier run behind a failure

# ---------------------------------------------------------------- prerequisites
if [ ! -x /usr/bin/time ]; then
  step "installing GNU time (/usr/bin/time is missing)"
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null \
      || die "could not install the 'time' package"
  fi
  [ -x /usr/bin/time ] || die "/usr/bin/time is required (Debian package 'time')"
fi
if ! python3 -c 'import yaml, jsonschema, referencing; yaml.CSafeLoader' 2>/dev/null; then
  step "installing PyYAML (with libyaml) and jsonschema>=4.18 for the generator and the baseline"
  python3 -m pip install --quiet 'pyyaml>=6' 'jsonschema>=4.18' \
    || die "python3 needs PyYAML (built with libyaml) and jsonschema>=4.18"
fi

# ---------------------------------------------------------------- builds
YTEMPIRE="${YTEMPIRE_BIN:-}"
if want validate; then
  if [ "$BUILD" = 1 ] && [ -z "$YTEMPIRE" ]; then
    step "swift build -c release --product ytempire"
    if ! swift build -c release --product ytempire > "$OUT/logs/build.log" 2>&1; then
      tail -n 40 "$OUT/logs/build.log" >&2
      die "swift build -c release --product ytempire failed (full log: bench/out/logs/build.log)"
    fi
    tail -n 2 "$OUT/logs/build.log" | sed 's/^/    /'
  fi
  if [ -z "$YTEMPIRE" ]; then
    YTEMPIRE="$(swift build -c release --show-bin-path 2>/dev/null)/ytempire"
    [ -x "$YTEMPIRE" ] || YTEMPIRE="$ROOT/.build/release/ytempire"
  fi
  [ -x "$YTEMPIRE" ] || die "release binary not found at $YTEMPIRE"
fi

FLOOR="$OUT/yaml_floor"
if want floor; then
  step "cc -O2 bench/yaml_floor.c"
  # shellcheck disable=SC2046
  cc -O2 -o "$FLOOR" bench/yaml_floor.c $(pkg-config --cflags --libs yaml-0.1) \
    || die "building the libyaml floor failed (needs libyaml-dev and pkg-config)"
fi

# ---------------------------------------------------------------- the repository
if [ "$REGEN" = 1 ] || [ ! -f "$REPO/.ytempire-bench" ]; then
  step "generating $REPO ($CHANNELS channels)"
  python3 bench/gen_repo.py "$REPO" --channels "$CHANNELS" \
    --example "${BENCH_EXAMPLE:-$ROOT/examples/empire}" --schemas "${BENCH_SCHEMAS:-$ROOT/schemas}" || die "bench/gen_repo.py failed"
else
  step "reusing $REPO (pass --regen to regenerate)"
fi
NFILES=$(find "$REPO" -path '*/.*' -prune -o -type f \( -name '*.yaml' -o -name '*.yml' \) -print | wc -l)
NBYTES=$(find "$REPO" -path '*/.*' -prune -o -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 | du -cb --files0-from=- | tail -n1 | cut -f1)
echo "    $NFILES YAML files, $NBYTES bytes"

# ---------------------------------------------------------------- measuring
# measure NAME CMD...: one untimed warm-up run (page cache, exit code), then RUNS timed runs
# with /usr/bin/time -f '%e %M'. Appends "NAME wall_e rss_kib wall_hires" lines to $RESULTS.
RESULTS="$OUT/logs/results.txt"
: > "$RESULTS"
measure() {
  local name="$1"; shift
  local log="$OUT/logs/$name"
  echo "==> $name: $*"
  if ! "$@" > "$log.out" 2> "$log.err"; then
    echo "--- $name exited non-zero; last lines of its output:" >&2
    tail -n 30 "$log.out" "$log.err" >&2
    die "$name failed on $REPO (exit code must be 0)"
  fi
  local i t0 t1 line
  for ((i = 1; i <= RUNS; i++)); do
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f '%e %M' -o "$log.time" "$@" > "$log.out" 2> "$log.err"; then
      tail -n 30 "$log.out" "$log.err" >&2
      die "$name failed on timed run $i"
    fi
    t1=$EPOCHREALTIME
    line=$(tail -n 1 "$log.time")
    echo "$name $line $(python3 -c "print(f'{$t1 - $t0:.4f}')")" >> "$RESULTS"
    echo "    run $i: wall ${line% *} s, max RSS ${line#* } KiB"
  done
  sed 's/^/    output: /' "$log.out" | tail -n 3
}

want validate && measure validate "$YTEMPIRE" validate "$REPO"
want floor && measure floor "$FLOOR" "$REPO"
want python && measure python python3 bench/py_validate.py "$REPO" --schemas "${BENCH_SCHEMAS:-$ROOT/schemas}"

# ---------------------------------------------------------------- report
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILT="$("$YTEMPIRE" debug build-info --field configuration 2>/dev/null || echo unknown)"
python3 - "$RESULTS" "$OUT/validate-bench.json" "$CHANNELS" "$NFILES" "$NBYTES" "$RUNS" "$COMMIT" "$BUILT" <<'PY'
import json, os, statistics, sys, time
results, out_json, channels, nfiles, nbytes, runs, commit, built = sys.argv[1:]
tools = {}
for line in open(results):
    name, wall, rss, hires = line.split()
    t = tools.setdefault(name, {"wall_s": [], "wall_hires_s": [], "rss_kib": []})
    t["wall_s"].append(float(wall)); t["wall_hires_s"].append(float(hires)); t["rss_kib"].append(int(rss))
cmds = {"validate": "ytempire validate REPO", "floor": "bench/out/yaml_floor REPO",
        "python": "python3 bench/py_validate.py REPO"}
for name, t in tools.items():
    t["command"] = cmds.get(name, name)
    t["median_wall_s"] = statistics.median(t["wall_s"])
    t["median_wall_hires_s"] = round(statistics.median(t["wall_hires_s"]), 4)
    t["max_rss_kib"] = max(t["rss_kib"])

def w(n):  # ratios use the microsecond wall clock: %e has only 10 ms resolution
    return tools[n]["median_wall_hires_s"] if n in tools else None
targets = []
def target(key, label, value, op, limit, unit=""):
    ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
    targets.append({"name": key, "label": label, "value": value, "op": op, "target": limit,
                    "unit": unit, "result": "n/a" if ok is None else ("PASS" if ok else "MISS")})
v, f, p = w("validate"), w("floor"), w("python")
target("validate_over_floor", "validate / floor (wall)", round(v / f, 2) if v and f else None, "<=", 3.0, "x")
target("python_over_validate", "python / validate (wall)", round(p / v, 2) if v and p else None, ">=", 10.0, "x")
rss = tools["validate"]["max_rss_kib"] / 1024 if "validate" in tools else None
target("validate_peak_rss", "validate peak RSS", round(rss, 1) if rss is not None else None, "<=", 200.0, "MiB")

print()
print(f"validate benchmark: {channels} channels, {nfiles} YAML files, {int(nbytes)/1e6:.1f} MB, "
      f"{runs} runs each (median wall, max RSS), {built} binary, commit {commit}")
print(f"{'tool':<10} {'median wall (s)':>16} {'hi-res wall (s)':>16} {'max RSS (MiB)':>14}   runs (s)")
for name in ("validate", "floor", "python"):
    if name in tools:
        t = tools[name]
        print(f"{name:<10} {t['median_wall_s']:>16.2f} {t['median_wall_hires_s']:>16.3f} "
              f"{t['max_rss_kib']/1024:>14.1f}   {' '.join(f'{x:.3f}' for x in t['wall_hires_s'])}")
print()
for t in targets:
    val = "n/a" if t["value"] is None else f"{t['value']}{'' if t['unit'] == 'x' else ' '}{t['unit']}"
    print(f"{t['result']:<5} {t['label']:<26} {val:>12}   (target {t['op']} {t['target']}{' ' + t['unit'] if t['unit'] != 'x' else 'x'})")
doc = {"benchmark": "validate", "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "commit": commit, "binary_configuration": built, "cpus": os.cpu_count(), "channels": int(channels), "yaml_files": int(nfiles),
       "yaml_bytes": int(nbytes), "runs": int(runs), "tools": tools, "targets": targets}
with open(out_json, "w") as fh:
    json.dump(doc, fh, indent=2)
    fh.write("\n")
print(f"\nwrote {os.path.relpath(out_json)}")
PY
