#!/usr/bin/env python3
"""Generate a large, valid desired-state repository for the validate benchmark.

    python3 bench/gen_repo.py OUT_DIR [--channels N] [--example DIR] [--seed S]

1. Copies every file of the example repository (default examples/empire/) except its
   channels/ folder, anything its .ytempireignore ignores (e.g. drafts/) and hidden
   directories. Relative `# yaml-language-server: $schema=` comments are re-pointed so
   they still reach schemas/ from the new location.
2. Writes ratelimits/youtube-bench.yaml: a RateLimit (service youtube) with a quota big
   enough for N channels and no reservedPerChannel, so the quota-reserve rule holds.
3. Writes N Channel files channels/ch-00001.yaml ... : branding (title, ~200-char
   description, keywords, defaultLanguage, country), 2 playlists, content with providers
   llm/tts/image naming the example's chains, limits with quotaShare = 0.9/N rounded down
   to 2 significant digits (0.00009 for N=10000, so the sum stays <= 1), and
   rateLimit: youtube-bench. The example's own channels are dropped, so its youtube-api
   RateLimit governs none of them.
4. Schedules of the example that name dropped channels (`channels: [tech-daily]`) are
   re-pointed at generated ones (example channel i -> ch-0000i); generated channels
   inherit the labels of the example channels in rotation, so channelSelectors still match.

Deterministic: the same N, seed and example give byte-identical output. OUT_DIR is
replaced if it is empty or was made by this script (it holds .ytempire-bench); otherwise
the script refuses. Finally the result is checked with bench/py_validate.py's
cross-resource rules (and schemas, when schemas/ exists) unless --no-check.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import py_validate as pv  # noqa: E402  (YAML 1.2 loader, .ytempireignore matcher, checks)

MARKER = ".ytempire-bench"
BENCH_RL = "youtube-bench"
SCHEMA_RE = re.compile(r"^(\s*#\s*yaml-language-server:\s*\$schema=)(\S+)(.*)$")

NICHES = {
    "tech": (["gadgets", "ai news", "software", "smartphones", "reviews", "coding", "startups", "cloud"],
             ["Tech", "Gadget", "Code", "Silicon", "Byte"]),
    "gaming": (["gaming", "walkthrough", "speedrun", "esports", "retro games", "indie games", "tips"],
               ["Gaming", "Pixel", "Quest", "Arcade", "Respawn"]),
    "finance": (["investing", "personal finance", "stocks", "budgeting", "crypto", "retirement"],
                ["Money", "Finance", "Wealth", "Market", "Ledger"]),
    "cooking": (["recipes", "cooking", "baking", "meal prep", "street food", "vegan"],
                ["Kitchen", "Recipe", "Flavor", "Chef", "Spice"]),
    "travel": (["travel", "budget travel", "city guide", "backpacking", "hidden gems", "vlog"],
               ["Travel", "Nomad", "Voyage", "Compass", "Passport"]),
    "science": (["science", "space", "physics", "biology", "explained", "experiments"],
                ["Science", "Cosmos", "Atom", "Lab", "Quantum"]),
    "fitness": (["fitness", "workout", "home gym", "nutrition", "running", "yoga"],
                ["Fitness", "Strong", "Pulse", "Motion", "Core"]),
    "history": (["history", "ancient history", "documentary", "empires", "world war", "archaeology"],
                ["History", "Chronicle", "Legacy", "Era", "Archive"]),
}
ADJ = ["Daily", "Weekly", "Smart", "Quick", "Deep", "Simple", "Bold", "Curious", "Modern", "Pocket"]
NOUN = ["Digest", "Lab", "Hub", "Explained", "Insider", "Minute", "Brief", "Journal", "Signal", "Show"]
SENT = [
    "New videos every day about {kw}, made simple and fun to watch.",
    "We break down {kw} and {kw2} so you can keep up in minutes.",
    "Honest takes, clear explanations and practical tips on {kw}.",
    "Subscribe for weekly deep dives into {kw} and {kw2}.",
    "From beginner basics to expert tricks in {kw}, all in one place.",
    "Short, well-researched stories on {kw} for curious minds.",
    "Join thousands of viewers learning about {kw} every week.",
]
LANG_COUNTRY = [("en", "US"), ("en", "GB"), ("en-US", "CA"), ("es", "ES"), ("es", "MX"), ("de", "DE"),
                ("fr", "FR"), ("pt-BR", "BR"), ("it", "IT"), ("ja", "JP"), ("nl", "NL"), ("sv", "SE")]
STYLES = ["educational", "entertainment", "documentary", "tutorial", "news", "review"]
VISUALS = ["modern_dynamic", "minimal_clean", "cinematic", "retro_pixel", "bold_graphic"]
VOICES = ["professional_male", "professional_female", "casual_male", "casual_female"]
DURATIONS = ["5m", "8m", "10m", "12m", "15m", "1h"]
PRIVACY = ["public", "public", "unlisted", "private"]
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"


def q(s: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML double-quoted scalars)."""
    return json.dumps(s)


def plain_or_q(s: str) -> str:
    return s if re.fullmatch(r"[a-z][a-z0-9]*", s) else q(s)


def quota_share(n: int) -> str:
    """0.9/n rounded DOWN to two significant digits, written as a plain decimal (no exponent:
    PyYAML, unlike YAML 1.2, reads 9e-05 as a string)."""
    x = Decimal("0.9") / Decimal(n)
    exp = x.adjusted()  # position of the first significant digit
    x = x.quantize(Decimal(1).scaleb(exp - 1), rounding=ROUND_DOWN).normalize()
    s = format(x, "f")
    assert Decimal(s) * n <= 1
    return s


def description(rng: random.Random, kws) -> str:
    """About 200 characters: whole sentences, no template twice."""
    parts, length = [], 0
    for tpl in rng.sample(SENT, len(SENT)):
        if length >= 180:
            break
        kw, kw2 = rng.sample(kws, 2)
        parts.append(tpl.format(kw=kw, kw2=kw2))
        length += len(parts[-1]) + 1
    return " ".join(parts)


def schema_comment(target: Path, from_dir: Path) -> str:
    return f"# yaml-language-server: $schema={os.path.relpath(target, from_dir)}\n"


def channel_yaml(i: int, rng: random.Random, ctx) -> str:
    name = f"ch-{i:05d}"
    labels = ctx["labels"][(i - 1) % len(ctx["labels"])] if ctx["labels"] else None
    niche = (labels or {}).get("niche") if labels else None
    if niche not in NICHES:
        niche = list(NICHES)[(i - 1) % len(NICHES)]
    if not labels:
        labels = {"niche": niche}
    kws, words = NICHES[niche]
    lang, country = rng.choice(LANG_COUNTRY)
    title = f"{rng.choice(words)} {rng.choice(ADJ)} {rng.choice(NOUN)} {i}"
    chan_id = "UC" + "".join(rng.choice(ID_ALPHABET) for _ in range(22))
    keywords = rng.sample(kws, rng.randint(3, min(6, len(kws))))
    p1, p2 = rng.sample(kws, 2)
    out = [ctx["channel_comment"],
           "apiVersion: ytempire.io/v1",
           "kind: Channel",
           "metadata:",
           f"  name: {name}",
           "  labels:"]
    out += [f"    {k}: {plain_or_q(str(v))}" for k, v in labels.items()]
    out += ["spec:",
            "  active: true",
            "  youtube:",
            f"    channelId: {chan_id}",
            f"    credentials: youtube-{name}",
            "  branding:",
            f"    title: {q(title)}",
            f"    description: {q(description(rng, kws))}",
            "    keywords: [" + ", ".join(plain_or_q(k) for k in keywords) + "]",
            f"    defaultLanguage: {lang}",
            f"    country: {country}",
            "  playlists:"]
    for pname, kw in ((p1, p1), (p2, p2)):
        slug = re.sub(r"[^a-z0-9]+", "-", pname).strip("-")
        out += [f"    - name: {slug}",
                f"      title: {q(kw.title() + ' ' + rng.choice(NOUN))}",
                f"      description: {q(f'Everything about {kw}, collected by {title}.')}",
                f"      privacy: {rng.choice(PRIVACY)}",
                "      tags: [" + ", ".join(plain_or_q(t) for t in sorted({kw, niche})) + "]"]
    prov = ctx["providers"]
    out += ["  content:",
            f"    style: {rng.choice(STYLES)}",
            f"    duration: {rng.choice(DURATIONS)}",
            f"    voice: {rng.choice(VOICES)}",
            f"    visualStyle: {rng.choice(VISUALS)}",
            "    providers: {" + ", ".join(f"{c}: {prov[c]}" for c in ("llm", "tts", "image") if c in prov) + "}",
            "  limits:",
            f"    videosPerDay: {rng.randint(1, 6)}",
            f"    uploadsPerHour: {rng.randint(1, 3)}",
            f"    quotaShare: {ctx['share']}",
            f"  rateLimit: {BENCH_RL}",
            ""]
    return "\n".join(out)


def ratelimit_yaml(n: int, comment: str) -> str:
    return "\n".join([
        comment.rstrip("\n"),
        "# Generated by bench/gen_repo.py: the YouTube quota governing the generated channels.",
        "apiVersion: ytempire.io/v1",
        "kind: RateLimit",
        "metadata:",
        f"  name: {BENCH_RL}",
        "  labels: {purpose: benchmark}",
        "spec:",
        "  service: youtube",
        "  quota:",
        "    units: 1000000000",
        "    window: daily",
        '    resetAt: "00:00"',
        "    timezone: America/Los_Angeles",
        "    costs: {videos.insert: 1600, videos.update: 50, videos.list: 1, channels.list: 1, channels.update: 50,",
        "            search.list: 100, playlists.list: 1, playlists.insert: 50, playlists.update: 50,",
        "            playlists.delete: 50, playlistItems.insert: 50}",
        "    emergencyReserve: 1000000",
        "  requests: {perSecond: 200, perMinute: 5000}",
        "  concurrency: 8",
        "  retry:",
        "    maxRetries: 5",
        "    initialDelay: 1s",
        "    maxDelay: 60s",
        "    multiplier: 2",
        "    jitter: true",
        "    retryOn: {statuses: [429, 500, 502, 503, 504], reasons: [quotaExceeded, backendError]}",
        "  circuitBreaker: {failureThreshold: 3, successThreshold: 2, timeout: 5m, halfOpenRequests: 3}",
        "",
    ])


def rewrite_schema_comment(text: str, src_dir: Path, dst_dir: Path) -> str:
    lines = text.split("\n", 5)
    for k, line in enumerate(lines[:5]):
        m = SCHEMA_RE.match(line)
        if m and not re.match(r"^[a-z]+:", m.group(2)) and not m.group(2).startswith("/"):
            target = (src_dir / m.group(2)).resolve()
            lines[k] = m.group(1) + os.path.relpath(target, dst_dir) + m.group(3)
    return "\n".join(lines)


def rewrite_schedule_channels(text: str, mapping: dict) -> str:
    """Replace dropped channel names inside `channels:` lists (flow or block), textually,
    so comments and formatting of the example survive."""
    if not mapping:
        return text
    word = re.compile(r"(?<![-a-z0-9])(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))
                      + r")(?![-a-z0-9])")
    sub = lambda s: word.sub(lambda m: mapping[m.group(1)], s)  # noqa: E731
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)channels:\s*(.*)$", lines[i])
        if m:
            indent, rest = len(m.group(1)), m.group(2)
            if rest.startswith("["):
                lines[i] = lines[i][: m.start(2)] + sub(rest)
            elif rest == "" or rest.startswith("#"):
                j = i + 1
                while j < len(lines):
                    lm = re.match(r"^(\s*)(-\s.*|#.*|)$", lines[j])
                    if not lm or (lines[j].strip() and len(lm.group(1)) < indent):
                        break
                    if lines[j].lstrip().startswith("-"):
                        lines[j] = sub(lines[j])
                    j += 1
                i = j
                continue
        i += 1
    return "\n".join(lines)


def prepare_out(out: Path):
    if out.exists():
        if not out.is_dir():
            raise SystemExit(f"gen_repo: {out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SystemExit(f"gen_repo: {out} is not empty and was not made by gen_repo.py; refusing to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="generate a desired-state repo with N channels")
    ap.add_argument("out", type=Path)
    ap.add_argument("--channels", type=int, default=10000)
    ap.add_argument("--example", type=Path, default=HERE.parent / "examples" / "empire")
    ap.add_argument("--schemas", type=Path, default=HERE.parent / "schemas")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--no-check", action="store_true", help="skip the final self-check")
    a = ap.parse_args(argv)
    n = a.channels
    if n < 1:
        ap.error("--channels must be >= 1")
    ex = a.example.resolve()
    if not ex.is_dir():
        raise SystemExit(f"gen_repo: example repository {ex} not found")
    out = a.out.resolve()
    prepare_out(out)

    # ---- read the example: chains, channels (to drop), their labels, schema comment style
    ex_files = pv.walk_files(ex, exts=None)
    chains, ex_channels, schedule_files = {}, [], set()
    channel_comment_target = None
    for rel in ex_files:
        if not rel.endswith((".yaml", ".yml")):
            continue
        docs = pv.load_docs(ex / rel)
        for d in docs:
            if not isinstance(d, dict):
                continue
            kind, meta = d.get("kind"), d.get("metadata") or {}
            if kind == "ProviderChain":
                chains[meta.get("name")] = (d.get("spec") or {}).get("capability")
            elif kind == "Channel":
                ex_channels.append((rel, meta.get("name"), meta.get("labels") or {}))
                if not rel.startswith("channels/"):
                    print(f"gen_repo: warning: Channel {meta.get('name')} in {rel} is outside channels/ and is kept",
                          file=sys.stderr)
            elif kind == "Schedule":
                schedule_files.add(rel)
        if rel.startswith("channels/") and channel_comment_target is None:
            first = (ex / rel).read_text(encoding="utf-8").split("\n", 1)[0]
            m = SCHEMA_RE.match(first)
            if m and not m.group(2).startswith(("/", "http:", "https:")):
                channel_comment_target = ((ex / rel).parent / m.group(2)).resolve()
    providers = {}
    for cap in ("llm", "tts", "image"):
        if chains.get(cap) == cap:
            providers[cap] = cap
        else:
            alt = sorted(nm for nm, c in chains.items() if c == cap)
            if alt:
                providers[cap] = alt[0]
                print(f"gen_repo: warning: no ProviderChain named '{cap}'; using '{alt[0]}'", file=sys.stderr)
            else:
                print(f"gen_repo: warning: no ProviderChain of capability {cap}; channels omit it", file=sys.stderr)
    dropped = [(rel, nm, lb) for rel, nm, lb in ex_channels if rel.startswith("channels/")]
    mapping = {nm: f"ch-{(k % n) + 1:05d}" for k, (_, nm, _) in enumerate(dropped)}
    if len(dropped) > n:
        print(f"gen_repo: warning: {len(dropped)} example channels but only {n} generated; "
              "Schedules may list a channel twice", file=sys.stderr)
    label_sets = [lb for _, _, lb in dropped if lb]

    schema_dir = a.schemas.resolve()
    if channel_comment_target is None:
        channel_comment_target = schema_dir / "channel.schema.json"
    rl_target = channel_comment_target.parent / "ratelimit.schema.json"
    for cand in sorted(channel_comment_target.parent.glob("*.schema.json")):
        if pv._norm(cand.name.split(".")[0]) == "ratelimit":
            rl_target = cand

    # ---- copy the example minus channels/
    copied = 0
    for rel in ex_files:
        if rel.startswith("channels/"):
            continue
        src, dst = ex / rel, out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith((".yaml", ".yml")):
            text = src.read_text(encoding="utf-8")
            text = rewrite_schema_comment(text, src.parent, dst.parent)
            if rel in schedule_files:
                text = rewrite_schedule_channels(text, mapping)
            dst.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(src, dst)
        copied += 1

    # ---- the benchmark RateLimit and the N channels
    (out / "ratelimits").mkdir(exist_ok=True)
    rl_path = out / "ratelimits" / f"{BENCH_RL}.yaml"
    if rl_path.exists():
        raise SystemExit(f"gen_repo: the example already has {rl_path.relative_to(out)}")
    rl_path.write_text(ratelimit_yaml(n, schema_comment(rl_target, rl_path.parent)), encoding="utf-8")
    ch_dir = out / "channels"
    ch_dir.mkdir(exist_ok=True)
    ctx = {"labels": label_sets, "providers": providers, "share": quota_share(n),
           "channel_comment": schema_comment(channel_comment_target, ch_dir).rstrip("\n")}
    rng = random.Random(a.seed)
    for i in range(1, n + 1):
        (ch_dir / f"ch-{i:05d}.yaml").write_text(channel_yaml(i, rng, ctx), encoding="utf-8")
    (out / MARKER).write_text(f"generated by bench/gen_repo.py --channels {n} --seed {a.seed}\n")
    print(f"gen_repo: {out}: copied {copied} example files (dropped {len(dropped)} example channels), "
          f"wrote {n} channels (quotaShare {ctx['share']}) + ratelimits/{BENCH_RL}.yaml; "
          f"providers {providers}; schedule refs remapped {mapping}")

    if a.no_check:
        return 0
    # ---- self-check: schemas (if present) + cross-resource rules
    docs = [(rel, d) for rel in pv.walk_files(out) for d in pv.load_docs(out / rel)
            if isinstance(d, dict) and isinstance(d.get("metadata"), dict) and "name" in d["metadata"]]
    problems = []
    if schema_dir.is_dir() and any(schema_dir.glob("*.json")):
        validators, _ = pv.build_validators(schema_dir)
        for rel, d in docs:
            v = validators.get(d.get("kind"))
            if v is None:
                problems.append(f"{rel}: no schema for kind {d.get('kind')!r}")
                continue
            for e in v.iter_errors(d):
                problems.append(f"{rel}: {e.json_path}: {e.message}")
    else:
        print(f"gen_repo: note: {schema_dir} has no schemas; checked cross-resource rules only", file=sys.stderr)
    if not problems:
        problems = pv.cross_check(docs)
    for p in problems[:30]:
        print("gen_repo: self-check: " + p, file=sys.stderr)
    if problems:
        print(f"gen_repo: self-check FAILED ({len(problems)} problems)", file=sys.stderr)
        return 1
    print(f"gen_repo: self-check ok ({len(docs)} documents)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
