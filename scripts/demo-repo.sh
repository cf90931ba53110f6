#!/usr/bin/env bash
# Makes a local git repository from examples/empire (the embedded default desired state),
# so that `make run` reads it the way ytempire reads an operator's repository: from a commit.
set -euo pipefail
out=${1:?usage: demo-repo.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out/empire"
mkdir -p "$out/empire"
cp -R "$root/examples/empire/." "$out/empire/"
cd "$out/empire"
git init -q -b main
git add -A
GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
  git -c user.name=ytempire-demo -c user.email=demo@ytempire.invalid -c commit.gpgsign=false \
  commit -q -m "Desired state from examples/empire"
echo "$out/empire"
