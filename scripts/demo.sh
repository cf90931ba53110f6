#!/usr/bin/env bash
# `make run`: the whole system on one machine, without credentials. Starts the sandbox
# (emulators of YouTube, n8n, Cloudflare and Vault seeded from examples/empire, with
# branding that differs from it) and a local Prometheus (when Debian's package is installed),
# makes a local git repository from examples/empire, and runs plan, apply, plan again (no
# changes) and status against it: all seven kinds converge.
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
prom=""
cleanup() {
  kill $sandbox 2>/dev/null || true; wait $sandbox 2>/dev/null || true
  if [ -n "$prom" ]; then kill $prom 2>/dev/null || true; wait $prom 2>/dev/null || true; fi
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  [ -s "$demo/ytempire.yaml" ] && grep -q '^policy:' "$demo/ytempire.yaml" && break
  kill -0 $sandbox 2>/dev/null || { cat "$demo/sandbox.log"; echo "the sandbox did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$demo/ytempire.yaml" ] || { cat "$demo/sandbox.log"; echo "the sandbox wrote no configuration within 30 s" >&2; exit 1; }
head -1 "$demo/sandbox.log"
echo "It seeded the channels with older branding, so there is work to do. Configuration: $demo/ytempire.yaml"

# Monitors converge into a real Prometheus (Debian's package) when it is installed.
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  say "Prometheus on 127.0.0.1 (Debian's package): Monitors become the ytempire alerting-rule group of its rule file"
  pdir="$demo/prometheus"
  rm -rf "$pdir" && mkdir -p "$pdir/rules" "$pdir/data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  printf 'global:\n  evaluation_interval: 15s\nrule_files:\n  - %s/rules/ytempire.yml\n' "$pdir" >"$pdir/prometheus.yml"
  prometheus --config.file="$pdir/prometheus.yml" --storage.tsdb.path="$pdir/data" \
    --web.listen-address="127.0.0.1:$port" --web.enable-lifecycle >"$pdir/prometheus.log" 2>&1 &
  prom=$!
  for _ in $(seq 1 300); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/-/ready', timeout=1)" 2>/dev/null && break
    kill -0 $prom 2>/dev/null || { tail -5 "$pdir/prometheus.log"; echo "prometheus did not start" >&2; exit 1; }
    sleep 0.1
  done
  echo "Prometheus at http://127.0.0.1:$port, rule file $pdir/rules/ytempire.yml"
  # integrations.prometheus, right below `integrations:` in the written configuration.
  python3 - "$demo/ytempire.yaml" "$port" "$pdir/rules/ytempire.yml" <<'PY'
import sys
path, port, rules = sys.argv[1:4]
lines = open(path).read().split("\n")
i = lines.index("integrations:")
lines[i + 1:i + 1] = ["  prometheus:", f'    endpoint: "http://127.0.0.1:{port}"', f'    rulesFile: "{rules}"']
open(path, "w").write("\n".join(lines))
PY
else
  say "Prometheus is not installed (apt-get install prometheus): the Monitors stay under 'Not reconciled'"
fi

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
if [ -n "$prom" ]; then
  say "The ytempire group in Prometheus's rule file"
  cat "$demo/prometheus/rules/ytempire.yml"
fi
echo
echo "Done. The sandbox stops now; everything is under $demo."
