#!/usr/bin/env bash
# `make run`: the whole system on one machine, without credentials. Starts the sandbox
# (emulators of YouTube, n8n, Cloudflare and Vault seeded from examples/empire, with
# branding that differs from it), makes a local git repository from examples/empire, and
# runs plan, apply, plan again (no changes) and status against it.
set -euo pipefail
bin=${YTEMPIRE:-./.build/debug/ytempire}
demo=${1:-.ytempire-demo}
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)
rm -rf "$demo/state" "$demo/ytempire.yaml" "$demo/sandbox.log" "$demo/plan.json"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*" 2>/dev/null || printf '\n==> %s\n' "$*"; }
[ -t 1 ] || say() { printf '\n==> %s\n' "$*"; }

say "A local git repository made from examples/empire (the desired state operators keep in git)"
repo=$(bash "$(dirname "$0")/demo-repo.sh" "$demo")
git -C "$repo" log --oneline -1

say "The sandbox: local emulators of YouTube (with OAuth), n8n, Cloudflare and Vault on 127.0.0.1"
"$bin" sandbox --listen 127.0.0.1:0 --seed-from "$repo" --write-config "$demo/ytempire.yaml" \
  --state-dir "$demo/state" >"$demo/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true; wait $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  [ -s "$demo/ytempire.yaml" ] && grep -q '^policy:' "$demo/ytempire.yaml" && break
  kill -0 $sandbox 2>/dev/null || { cat "$demo/sandbox.log"; echo "the sandbox did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$demo/ytempire.yaml" ] || { cat "$demo/sandbox.log"; echo "the sandbox wrote no configuration within 30 s" >&2; exit 1; }
head -1 "$demo/sandbox.log"
echo "It seeded the channels with older branding, so there is work to do. Configuration: $demo/ytempire.yaml"

cfg=(--config "$demo/ytempire.yaml")
say "ytempire validate: the configuration and the desired state"
"$bin" validate "${cfg[@]}" "$repo"

say "ytempire plan: what apply would change, and what it costs in YouTube quota (changes nothing)"
"$bin" plan "${cfg[@]}" --out "$demo/plan.json"

say "ytempire apply plan.json: converge, within the quota; the outcome is committed as status files"
"$bin" apply "${cfg[@]}" "$demo/plan.json" --auto-approve

say "ytempire plan again: nothing left to do, and nothing observed again (stored observations are fresh)"
"$bin" plan "${cfg[@]}" --detailed-exitcode

say "ytempire status"
"$bin" status "${cfg[@]}"

say "The status branch in the source repository: git log ytempire/status, and one status file"
git -C "$repo" log --oneline ytempire/status --
git -C "$repo" show ytempire/status:status/channel/tech-daily.yaml
git -C "$repo" show ytempire/status:status/summary.yaml
echo
echo "Done. The sandbox stops now; everything is under $demo."
