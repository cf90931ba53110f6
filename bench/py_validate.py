#!/usr/bin/env python3
"""The baseline a user would otherwise run: PyYAML (C loader) + jsonschema.

    python3 bench/py_validate.py DIR [--schemas DIR] [--no-cross] [--max-errors N]

Loads every *.yaml / *.yml file under DIR (honouring DIR/.ytempireignore, skipping
hidden directories such as .git) with PyYAML's C-accelerated loader, validates each
document against the JSON Schema 2020-12 of its kind from schemas/ (all schemas are
loaded into one `referencing` Registry; each kind's Draft202012Validator is built ONCE),
then runs the cheap cross-resource rules of docs/resource-model.md (names unique per
kind, references resolve to the right kind/capability, quotaShare sum, quota reserve).

Scalars are resolved by the YAML 1.2 core schema, as the resource model requires
(`country: NO` is the string "NO", `yes`/`on` are strings and so rejected where a bool is
expected, `0123` is the int 123, no timestamps): the loader is CSafeLoader with 1.2 core
implicit resolvers instead of PyYAML's YAML 1.1 ones. Parsing stays in C (libyaml).

Prints one line `files=F documents=D invalid=I errors=E cross_errors=C` and exits 1 if
any document is invalid (or unparsable, or of an unknown kind) or a cross-resource rule
fails, 0 otherwise, 2 on usage errors.

Self-contained: needs only PyYAML (with libyaml) and jsonschema >= 4.18 (`referencing`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import yaml

try:
    _BaseLoader = yaml.CSafeLoader
    WITH_LIBYAML = True
except AttributeError:  # PyYAML built without libyaml: still works, just slower
    _BaseLoader = yaml.SafeLoader
    WITH_LIBYAML = False

KINDS = ("Channel", "Schedule", "ProviderChain", "RateLimit", "CDNZone", "SecurityPolicy", "Monitor")


# --------------------------------------------------------------------------- YAML 1.2 core
class Yaml12Loader(_BaseLoader):
    """CSafeLoader (libyaml parser, Python constructor) with YAML 1.2 core scalar resolution."""


Yaml12Loader.yaml_implicit_resolvers = {}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))


def _construct_int(loader, node):
    v = loader.construct_scalar(node)
    if v.startswith("0o"):
        return int(v[2:], 8)
    if v.startswith("0x"):
        return int(v[2:], 16)
    return int(v, 10)  # 1.2: "0123" is decimal 123, not octal


def _construct_float(loader, node):
    v = loader.construct_scalar(node).lower()
    if v.endswith(".inf"):
        return float("-inf") if v.startswith("-") else float("inf")
    if v.endswith(".nan"):
        return float("nan")
    return float(v)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


# --------------------------------------------------------------------------- .ytempireignore
# The gitignore matcher is shared with scripts/check_schemas.py (one implementation in Python).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from check_schemas import IgnoreRules as _SharedIgnoreRules  # noqa: E402


class IgnoreRules(_SharedIgnoreRules):
    def __init__(self, text: str = ""):
        super().__init__(text.splitlines())

    @classmethod
    def for_root(cls, root: Path) -> "IgnoreRules":
        f = root / ".ytempireignore"
        return cls(f.read_text(encoding="utf-8")) if f.is_file() else cls()


def walk_files(root: Path, exts=(".yaml", ".yml"), honour_ignore: bool = True):
    """Relative posix paths of the files under root, sorted, minus ignored ones and hidden dirs.
    exts=None yields every file (used by gen_repo.py to copy an example)."""
    rules = IgnoreRules.for_root(root) if honour_ignore else IgnoreRules()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        reldir = os.path.relpath(dirpath, root)
        reldir = "" if reldir == "." else reldir.replace(os.sep, "/")
        keep = []
        for d in sorted(dirnames):
            rel = f"{reldir}/{d}" if reldir else d
            if d.startswith(".") or rules.ignored(rel, True):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = f"{reldir}/{f}" if reldir else f
            if exts is not None and not f.endswith(exts):
                continue
            if rules.ignored(rel, False):
                continue
            out.append(rel)
    out.sort()
    return out


def load_docs(path: Path):
    """All non-empty documents of one file (raises yaml.YAMLError)."""
    with open(path, "rb") as fh:
        return [d for d in yaml.load_all(fh, Loader=Yaml12Loader) if d is not None]


# --------------------------------------------------------------------------- schemas
def default_schema_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "schemas"


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def build_validators(schema_dir: Path):
    """{kind: Draft202012Validator}, built once, sharing one referencing Registry."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    files = sorted(schema_dir.glob("*.json"))
    if not files:
        raise SystemExit(f"py_validate: no *.json schemas in {schema_dir}")
    resources, by_file = [], {}
    for f in files:
        contents = json.loads(f.read_text(encoding="utf-8"))
        res = Resource.from_contents(contents, default_specification=DRAFT202012)
        uri = f.resolve().as_uri()
        resources.append((uri, res))
        resources.append((f.name, res))  # bare relative refs ("common.schema.json#/$defs/x")
        if isinstance(contents, dict) and contents.get("$id"):
            resources.append((contents["$id"], res))
        by_file[f] = (uri, contents)
    registry = Registry().with_resources(resources).crawl()

    kind_schema = {}
    # 1) a schema that pins `kind` with const/enum of one value
    for f, (uri, s) in by_file.items():
        k = (((s.get("properties") or {}).get("kind") or {}) if isinstance(s, dict) else {})
        const = k.get("const") or (k.get("enum")[0] if isinstance(k.get("enum"), list) and len(k["enum"]) == 1 else None)
        if const in KINDS and const not in kind_schema:
            kind_schema[const] = (f, s)
    # 2) by file name: channel.schema.json, provider-chain.schema.json, cdnzone.schema.json …
    for kind in KINDS:
        if kind in kind_schema:
            continue
        for f, (uri, s) in by_file.items():
            stem = f.name[: -len(".schema.json")] if f.name.endswith(".schema.json") else f.stem
            if _norm(stem) == _norm(kind):
                kind_schema[kind] = (f, s)
                break
    # 3) fall back to one umbrella schema (resource/ytempire/all) for kinds still missing
    umbrella = None
    for f, (uri, s) in by_file.items():
        if _norm(f.name.split(".")[0]) in ("resource", "resources", "ytempire", "all", "document", "envelope"):
            umbrella = (f, s)
    validators = {}
    for kind in KINDS:
        fs = kind_schema.get(kind) or umbrella
        if fs is None:
            continue
        f, s = fs
        if "$id" not in s:
            s = dict(s, **{"$id": f.resolve().as_uri()})
        validators[kind] = Draft202012Validator(
            s, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    if not validators:
        raise SystemExit(f"py_validate: could not map any schema in {schema_dir} to a kind")
    return validators, {k: str(v[0].name) for k, v in kind_schema.items()}


# --------------------------------------------------------------------------- cross-resource
def cross_check(docs):
    """docs: [(relpath, doc)] of schema-valid documents. Returns [message]."""
    errs = []
    names = {}
    for rel, d in docs:
        key = (d["kind"], d["metadata"]["name"])
        if key in names:
            errs.append(f"{rel}: error: duplicate-name: {key[0]} '{key[1]}' also in {names[key]}")
        else:
            names[key] = rel
    chain_cap = {}
    for rel, d in docs:
        if d["kind"] == "ProviderChain":
            chain_cap[d["metadata"]["name"]] = (d.get("spec") or {}).get("capability")
    has = lambda kind, n: (kind, n) in names  # noqa: E731
    share, governed = 0.0, {}
    for rel, d in docs:
        kind, name, spec = d["kind"], d["metadata"]["name"], d.get("spec") or {}
        where = f"{rel}: {kind}/{name}"
        if kind == "Channel":
            for cap, ref in ((spec.get("content") or {}).get("providers") or {}).items():
                if ref not in chain_cap:
                    errs.append(f"{where}: error: unresolved-reference: ProviderChain '{ref}'")
                elif chain_cap[ref] != cap:
                    errs.append(f"{where}: error: wrong-capability: '{ref}' is {chain_cap[ref]}, not {cap}")
            rl = spec.get("rateLimit")
            if rl is not None and not has("RateLimit", rl):
                errs.append(f"{where}: error: unresolved-reference: RateLimit '{rl}'")
            if spec.get("active", True) is not False:
                share += float((spec.get("limits") or {}).get("quotaShare", 0) or 0)
                if rl is not None:
                    governed[rl] = governed.get(rl, 0) + 1
        elif kind == "Schedule":
            for ch in spec.get("channels") or []:
                if not has("Channel", ch):
                    errs.append(f"{where}: error: unresolved-reference: Channel '{ch}'")
        elif kind == "ProviderChain":
            for p in spec.get("providers") or []:
                rl = p.get("rateLimit")
                if rl is not None and not has("RateLimit", rl):
                    errs.append(f"{where}: error: unresolved-reference: RateLimit '{rl}'")
    if share > 1 + 1e-9:
        errs.append(f"error: quota-share-exceeded: active channels' quotaShare sums to {share:.6f} > 1")
    for rel, d in docs:
        if d["kind"] != "RateLimit":
            continue
        q = (d.get("spec") or {}).get("quota") or {}
        n = governed.get(d["metadata"]["name"], 0)
        need = q.get("reservedPerChannel", 0) * n + q.get("emergencyReserve", 0)
        if q and need > q.get("units", 0):
            errs.append(f"{rel}: RateLimit/{d['metadata']['name']}: error: quota-reserve-exceeded: "
                        f"{q.get('reservedPerChannel', 0)} x {n} channels + {q.get('emergencyReserve', 0)} > {q.get('units')}")
    return errs


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--schemas", type=Path, default=default_schema_dir())
    ap.add_argument("--no-cross", action="store_true", help="schema validation only")
    ap.add_argument("--max-errors", type=int, default=50, help="error lines printed (all are counted)")
    a = ap.parse_args(argv)
    if not a.dir.is_dir():
        print(f"py_validate: {a.dir}: not a directory", file=sys.stderr)
        return 2

    validators, _ = build_validators(a.schemas)
    n_files = n_docs = n_invalid = n_errors = 0
    shown = 0
    good = []

    def report(msg):
        nonlocal shown
        if shown < a.max_errors:
            print(msg, file=sys.stderr)
        shown += 1

    for rel in walk_files(a.dir):
        n_files += 1
        try:
            docs = load_docs(a.dir / rel)
        except yaml.YAMLError as e:
            n_invalid += 1
            n_errors += 1
            report(f"{rel}: error: {e}".replace("\n", " "))
            continue
        for doc in docs:
            n_docs += 1
            kind = doc.get("kind") if isinstance(doc, dict) else None
            v = validators.get(kind)
            if v is None:
                n_invalid += 1
                n_errors += 1
                report(f"{rel}: error: unknown kind {kind!r}")
                continue
            errs = list(v.iter_errors(doc))
            if errs:
                n_invalid += 1
                n_errors += len(errs)
                name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
                for e in errs:
                    report(f"{rel}: {kind}/{name}: error: {e.json_path}: {e.message}")
            else:
                good.append((rel, doc))

    cross = [] if a.no_cross else cross_check(good)
    for m in cross:
        report(m)
    if shown > a.max_errors:
        print(f"... {shown - a.max_errors} more error lines not shown", file=sys.stderr)
    print(f"files={n_files} documents={n_docs} invalid={n_invalid} errors={n_errors} "
          f"cross_errors={len(cross)} libyaml={'yes' if WITH_LIBYAML else 'no'}")
    return 1 if (n_invalid or cross) else 0


if __name__ == "__main__":
    sys.exit(main())
