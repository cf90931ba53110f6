#!/usr/bin/env bash
# GitKit benchmark (issue 3, item 9). Usage: bash bench/git/run.sh [CHANNELS] [RUNS]
#  1. read every manifest of the N-channel benchmark repository at a commit from a warm
#     mirror (`ytempire debug read-tree`), next to `git ls-tree -r -z` + `git cat-file --batch`
#     over the same blobs in the same mirror;
#  2. fetch one new commit into a warm mirror through a real git daemon on 127.0.0.1
#     (`ytempire debug fetch`), next to `git fetch` into a bare mirror of its own.
# Prints medians of RUNS runs (wall time, process start included for both sides).
set -euo pipefail
cd "$(dirname "$0")/../.."
CHANNELS=${1:-10000}
RUNS=${2:-7}
BIN=${YTEMPIRE_BIN:-.build/release/ytempire}
[ -x "$BIN" ] || swift build -c release --product ytempire >&2
OUT=${BENCH_OUT:-bench/out/git}
mkdir -p "$OUT"
REPO="$OUT/repo"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.com \
       GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.com
if [ ! -d "$REPO/.git" ] || [ "$(cat "$OUT/channels" 2>/dev/null)" != "$CHANNELS" ]; then
  rm -rf "$REPO" "$OUT/served" "$OUT/state" "$OUT/gitmirror.git"
  python3 bench/gen_repo.py "$REPO" --channels "$CHANNELS" --no-check >&2
  git -C "$REPO" init -q -b main
  git -C "$REPO" add -A
  git -C "$REPO" commit -q -m "benchmark repository, $CHANNELS channels"
  echo "$CHANNELS" > "$OUT/channels"
fi
rm -rf "$OUT/served" "$OUT/state" "$OUT/gitmirror.git"
mkdir -p "$OUT/served"
git clone -q --bare "$REPO" "$OUT/served/empire.git"
git -C "$OUT/served/empire.git" gc -q          # packed, like a real server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$(git --exec-path)/git-daemon" --reuseaddr --base-path="$OUT/served" --export-all --listen=127.0.0.1 --port="$PORT" "$OUT/served" 2>/dev/null &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
URL="git://127.0.0.1:$PORT/empire.git"

# Warm mirrors: ours (libgit2) and a git CLI bare mirror for the baseline.
"$BIN" debug fetch --repo "$URL" --state-dir "$OUT/state" >/dev/null
git clone -q --mirror "$URL" "$OUT/gitmirror.git"
MIRROR=$(ls -d "$OUT"/state/git/mirrors/*.git)
COMMIT=$(git -C "$MIRROR" rev-parse main)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { python3 -c 'import sys,time,subprocess; t=time.perf_counter(); subprocess.run(sys.argv[1], shell=True, check=True, stdout=subprocess.DEVNULL); print("%.1f" % ((time.perf_counter()-t)*1000))' "$1"; }

READ_CMD="$BIN debug read-tree --repo '$URL' --ref $COMMIT --state-dir '$OUT/state'"
# The filter (manifests only) is part of the work; awk is the cheapest honest one.
BASE_AWK="git -C '$MIRROR' ls-tree -r $COMMIT | awk '\$2==\"blob\" && (\$4 ~ /\\.ya?ml\$/) {print \$3}' | git -C '$MIRROR' cat-file --batch"

eval "$READ_CMD" >&2
echo "baseline blobs: $(eval "$BASE_AWK" | grep -c ' blob ')" >&2

R=(); B=()
for _ in $(seq "$RUNS"); do
  R+=("$(ms "$READ_CMD")"); B+=("$(ms "$BASE_AWK")")
done
RM=$(printf '%s\n' "${R[@]}" | median); BM=$(printf '%s\n' "${B[@]}" | median)
echo "read all manifests at a commit ($CHANNELS channels), median of $RUNS:"
echo "  ytempire debug read-tree          ${RM} ms   runs: ${R[*]}"
echo "  git ls-tree -r | awk | cat-file   ${BM} ms   runs: ${B[*]}"
python3 -c "print('  ratio %.2fx (target <= 1.5x)' % ($RM/$BM))"

# Fetch one new commit into the warm mirrors.
F=(); G=()
WORK="$OUT/work"
rm -rf "$WORK"; git clone -q "$OUT/served/empire.git" "$WORK"
for i in $(seq "$RUNS"); do
  echo "# bench edit $i $RANDOM" >> "$WORK/channels/ch-00001.yaml"
  git -C "$WORK" commit -q -am "edit $i"
  git -C "$WORK" push -q origin main
  F+=("$(ms "$BIN debug fetch --repo '$URL' --state-dir '$OUT/state'")")
  G+=("$(ms "git -C '$OUT/gitmirror.git' fetch -q")")
done
FM=$(printf '%s\n' "${F[@]}" | median); GM=$(printf '%s\n' "${G[@]}" | median)
echo "fetch one new commit into a warm mirror (git daemon on 127.0.0.1), median of $RUNS:"
echo "  ytempire debug fetch              ${FM} ms   runs: ${F[*]}"
echo "  git fetch (bare mirror)           ${GM} ms   runs: ${G[*]}"
test "$(git -C "$MIRROR" rev-parse main)" = "$(git -C "$WORK" rev-parse main)" || { echo "mirror did not reach the new commit" >&2; exit 1; }
