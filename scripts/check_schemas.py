#!/usr/bin/env python3
"""Validate ytempire manifests against the JSON Schemas in schemas/.

Usage:
    python3 scripts/check_schemas.py [--quiet] [--schemas DIR] [--config FILE | --no-config] PATH...
    python3 scripts/check_schemas.py [--quiet] --config FILE
    python3 scripts/check_schemas.py [--quiet] [-v] --expect-valid DIR --expect-invalid DIR

PATH is a file or a directory. Directories are walked for *.yaml / *.yml files;
directories whose name starts with '.' (.git, .github, ...) are skipped, and when a
walked directory holds a `.ytempireignore` (gitignore syntax, see IgnoreRules) the
files and directories it matches are skipped. Files named explicitly are always
checked. Every YAML document is validated against the schema selected by its `kind`
(an unknown kind is a failure); empty documents are skipped.

Reconciler configurations (ytempire.yaml, kind ReconcilerConfig) are not manifests: a
schema marked `"x-ytempire-document": "config"` (reconcilerconfig.schema.json) is not
selected by `kind` while walking PATHs (a ReconcilerConfig document in a repository is an
unknown kind there, as for `ytempire validate`); `--config FILE` (repeatable) checks FILE
against it. When PATHs are given without `--config`, the repository's own
examples/ytempire.yaml is checked too (so `make schemas` covers it); `--no-config` skips it.

Each failure is printed compiler-style, `FILE:LINE:COL: error: MESSAGE`; the exit
status is 1 if anything failed and 0 otherwise (2 for usage errors or broken schemas).

Conformance mode: with --expect-valid DIR / --expect-invalid DIR (each may be
repeated), every *.yaml/*.yml file directly in DIR is one case that must be entirely
valid / must produce at least one error. Cases that disagree are printed and the exit
status is 1.

YAML is read the way a YAML 1.2 core-schema decoder reads it (see Yaml12Loader), not
with PyYAML's YAML 1.1 defaults: `NO`, `yes`, `on` are strings, `0123` is the integer
123, `1h30m` and `2024-01-01` are strings, `<<` is an ordinary key. Mapping keys are
kept as their source text and duplicate keys are errors.

Deliberate strictness beyond plain JSON Schema: `integer` does not accept floats
(a YAML `5.0` is a float, as in the Swift decoder), .inf/.nan are rejected, and
`pattern` uses ECMA-262 `$` (end of string only, not before a final newline).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator

try:
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode
    from yaml.constructor import ConstructorError
except ImportError:  # pragma: no cover
    sys.exit("check_schemas.py: PyYAML is required (pip install pyyaml)")
try:
    import jsonschema
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match
    from referencing import Registry, Resource
except ImportError:  # pragma: no cover
    sys.exit("check_schemas.py: jsonschema >= 4.18 and referencing are required (pip install jsonschema)")

DEFAULT_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "ytempire.yaml"
YAML_SUFFIXES = (".yaml", ".yml")

# --------------------------------------------------------------------------- YAML 1.2 core

_LoaderBase = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z")
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)\Z")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)


class Yaml12Loader(_LoaderBase):  # type: ignore[misc, valid-type]
    """Safe loader that resolves plain scalars by the YAML 1.2 core schema.

    - bool: true|True|TRUE|false|False|FALSE only (yes/no/on/off/y/n stay strings);
    - null: ~, null, Null, NULL and the empty scalar;
    - int: [-+]?[0-9]+ (decimal, so 0123 is 123), 0o[0-7]+, 0x[0-9a-fA-F]+;
    - float: [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?, .inf, .nan;
    - everything else is a string: no timestamps, no sexagesimal numbers (00:00),
      no `_` digit separators, no merge keys (`<<`), no `=` value key;
    - only the core tags (str, int, float, bool, null, seq, map) may be used explicitly;
    - mapping keys must be scalars and are kept as their source text; duplicates are errors.
    """

    yaml_implicit_resolvers: dict = {}
    yaml_constructors: dict = {}
    yaml_multi_constructors: dict = {}

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping node, but found {node.id}", node.start_mark)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       "mapping keys must be scalars", key_node.start_mark)
            key = key_node.value
            if key in mapping:
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       f"duplicate key '{key}'", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _construct_map(loader, node):
    data: dict[str, Any] = {}
    yield data
    data.update(loader.construct_mapping(node))


def _construct_seq(loader, node):
    data: list[Any] = []
    yield data
    data.extend(loader.construct_sequence(node))


def _construct_str(loader, node):
    return loader.construct_scalar(node)


def _construct_null(loader, node):
    value = loader.construct_scalar(node)
    if not _NULL_RE.match(value):
        raise ConstructorError(None, None, f"invalid null '{value}'", node.start_mark)
    return None


def _construct_bool(loader, node):
    value = loader.construct_scalar(node)
    if not _BOOL_RE.match(value):
        raise ConstructorError(None, None, f"invalid boolean '{value}' (YAML 1.2: true or false)", node.start_mark)
    return value.lower() == "true"


def _construct_int(loader, node):
    value = loader.construct_scalar(node)
    if not _INT_RE.match(value):
        raise ConstructorError(None, None, f"invalid integer '{value}'", node.start_mark)
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


def _construct_float(loader, node):
    value = loader.construct_scalar(node)
    if not _FLOAT_RE.match(value):
        raise ConstructorError(None, None, f"invalid number '{value}'", node.start_mark)
    result = float(value.lower().replace(".inf", "inf").replace(".nan", "nan"))
    if not math.isfinite(result):
        raise ConstructorError(None, None, f"non-finite number '{value}' is not supported", node.start_mark)
    return result


def _construct_undefined(loader, node):
    raise ConstructorError(None, None, f"unsupported tag '{node.tag}' (only YAML 1.2 core tags are allowed)",
                           node.start_mark)


for _tag, _fn in ((_MAP, _construct_map), (_SEQ, _construct_seq), (_STR, _construct_str),
                  (_NULL, _construct_null), (_BOOL, _construct_bool), (_INT, _construct_int),
                  (_FLOAT, _construct_float), (None, _construct_undefined)):
    Yaml12Loader.add_constructor(_tag, _fn)

# Order matters: for a given first character the first matching resolver wins (int before float).
Yaml12Loader.add_implicit_resolver(_BOOL, _BOOL_RE, list("tTfF"))
Yaml12Loader.add_implicit_resolver(_NULL, _NULL_RE, ["~", "n", "N", ""])
Yaml12Loader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(_FLOAT, _FLOAT_RE, list("-+0123456789."))


def load_documents(text: str) -> Iterator[tuple[Any, Any]]:
    """Yields (node, data) per YAML document; raises yaml.YAMLError."""
    loader = Yaml12Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield node, loader.construct_document(node)
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- schemas

def _strict_integer(checker, instance):
    return isinstance(instance, int) and not isinstance(instance, bool)


_ECMA_PATTERNS: dict[str, re.Pattern] = {}


def _ecma_pattern(pattern: str) -> re.Pattern:
    """Compiles a schema pattern with ECMA-262 `$` semantics: Python's `$` also matches
    before a final newline ("30s\n" would pass ^...$), ECMA-262's (and Swift's) does not."""
    compiled = _ECMA_PATTERNS.get(pattern)
    if compiled is None:
        out, i, in_class = "", 0, False
        while i < len(pattern):
            ch = pattern[i]
            if ch == "\\":
                out += pattern[i:i + 2]
                i += 2
                continue
            if ch == "[":
                in_class = True
            elif ch == "]":
                in_class = False
            out += "\\Z" if ch == "$" and not in_class else ch
            i += 1
        compiled = _ECMA_PATTERNS[pattern] = re.compile(out)
    return compiled


def _pattern_keyword(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


StrictValidator = jsonschema.validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern_keyword},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


class SchemaSet:
    def __init__(self, directory: Path):
        files = sorted(directory.glob("*.schema.json"))
        if not files:
            raise SystemExit(f"check_schemas.py: no *.schema.json in {directory}")
        resources = []
        self.kinds: dict[str, Any] = {}
        self.config: Any = None
        kind_schemas = []
        config_schema = None
        for path in files:
            with open(path, encoding="utf-8") as f:
                contents = json.load(f)
            try:
                Draft202012Validator.check_schema(contents)
            except jsonschema.SchemaError as e:
                raise SystemExit(f"{path}: error: invalid schema: {e.message}")
            if "$id" not in contents:
                raise SystemExit(f"{path}: error: schema has no $id")
            resources.append((contents["$id"], Resource.from_contents(contents)))
            kind = contents.get("properties", {}).get("kind", {}).get("const")
            if contents.get("x-ytempire-document") == "config":
                config_schema = contents
            elif kind:
                kind_schemas.append((kind, contents))
        registry = Registry().with_resources(resources)
        for kind, contents in kind_schemas:
            self.kinds[kind] = StrictValidator(contents, registry=registry)
        if config_schema is not None:
            self.config = StrictValidator(config_schema, registry=registry)
        self.files = files


# --------------------------------------------------------------------------- diagnostics

def yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def show(value: Any) -> str:
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def show_path(path) -> str:
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(element)):
            out += ("." if out else "") + str(element)
        else:
            out += "[" + json.dumps(str(element), ensure_ascii=False) + "]"
    return out or "document"


def node_at(node, path):
    """The YAML node at a JSON path (mapping keys are source text)."""
    for element in path:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == element:
                    node = value_node
                    break
            else:
                return node
        elif isinstance(node, SequenceNode) and isinstance(element, int) and element < len(node.value):
            node = node.value[element]
        else:
            return node
    return node


def key_node(mapping_node, key):
    if isinstance(mapping_node, MappingNode):
        for k, _ in mapping_node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k
    return mapping_node


NUMBER_TEXT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
TYPE_WORDS = {"object": "mapping", "array": "list"}


def _leaf(error):
    """For oneOf/anyOf without a custom message, the most relevant sub-error."""
    while error.validator in ("oneOf", "anyOf") and error.context and not _custom_message(error):
        error = best_match(error.context)
    return error


def _custom_message(error):
    return error.schema.get("errorMessage") if isinstance(error.schema, dict) else None


def _known_properties(schema: dict) -> list[str]:
    return list(schema.get("properties", {}).keys())


def describe(error, root_node) -> list[tuple[Any, str]]:
    """(node for the position, message) pairs for one jsonschema error."""
    error = _leaf(error)
    path = list(error.absolute_path)
    where = show_path(path)
    node = node_at(root_node, path)
    inst = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = _custom_message(error)
    v = error.validator

    if v in ("additionalProperties", "unevaluatedProperties") and isinstance(inst, dict):
        known = _known_properties(schema)
        patterns = list(schema.get("patternProperties", {}).keys())
        out = []
        for key in inst:
            if key in known or any(re.search(p, key) for p in patterns):
                continue
            msg = f"unknown field '{key}' in {where}"
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or \
                [k for k in known if k.lower() == key.lower()]
            if close:
                msg += f" (did you mean '{close[0]}'?)"
            elif known:
                msg += f" (known fields: {', '.join(known)})"
            out.append((key_node(node, key), msg))
        if out:
            return out
    if custom:
        return [(node, f"{where}: {custom}")]
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        if isinstance(inst, str):
            parent = node
            return [(key_node(parent, inst), f"{where}: invalid key {show(inst)}: {_pattern_or_enum(schema, inst)}")]
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [(node, f"missing required field '{missing}' in {where}")]
    if v == "type":
        expected = schema.get("type")
        expected_list = expected if isinstance(expected, list) else [expected]
        words = " or ".join(TYPE_WORDS.get(t, t) for t in expected_list)
        got = yaml_type(inst) if isinstance(inst, (dict, list)) else f"{yaml_type(inst)} {show(inst)}"
        msg = f"{where}: expected {words}, got {got}"
        if "boolean" in expected_list and isinstance(inst, str) and inst.lower() in YAML11_BOOLS:
            msg += " (booleans are YAML 1.2 'true' / 'false'; 'yes', 'no', 'on', 'off' are strings)"
        elif ({"number", "integer"} & set(expected_list)) and isinstance(inst, str) and NUMBER_TEXT.match(inst):
            msg += " (a quoted number is a string; write the number without quotes)"
        elif schema.get("title") == "duration" and isinstance(inst, (int, float)) and not isinstance(inst, bool):
            msg += " (a bare number is not a duration; add a unit: d, h, m, s or ms, e.g. 30s)"
        elif "string" in expected_list and isinstance(inst, (int, float, bool)) and not isinstance(inst, dict):
            msg += " (quote the value to make it a string)"
        return [(node, msg)]
    if v == "pattern":
        title = schema.get("title")
        if title:
            msg = f"{where}: {show(inst)} is not a valid {title}"
            if schema.get("description"):
                msg += f" ({schema['description']})"
        else:
            msg = f"{where}: {show(inst)} does not match {schema.get('pattern')}"
        return [(node, msg)]
    if v in ("enum", "const"):
        return [(node, f"{where}: {show(inst)} {_pattern_or_enum(schema, inst)}")]
    if v == "not":
        return [(node, f"{where}: field not allowed here")]
    if v in ("oneOf", "anyOf"):
        return [(node, f"{where}: {error.message}")]
    if v == "minLength":
        return [(node, f"{where}: must not be empty" if error.validator_value == 1
                 else f"{where}: {show(inst)} is shorter than {error.validator_value} characters")]
    if v == "maxLength":
        return [(node, f"{where}: {show(inst)} is longer than {error.validator_value} characters")]
    if v == "uniqueItems":
        return [(node, f"{where}: lists the same entry more than once")]
    if v == "minItems":
        return [(node, f"{where}: must not be empty" if error.validator_value == 1
                 else f"{where}: needs at least {error.validator_value} items")]
    message = error.message
    if isinstance(inst, (dict, list)):
        message = message.replace(repr(inst), show(inst))
    if len(message) > 300:
        message = message[:297] + "..."
    return [(node, f"{where}: {message}")]


def _pattern_or_enum(schema: dict, inst) -> str:
    if "enum" in schema:
        return "is not one of " + ", ".join(show(x) for x in schema["enum"])
    if "const" in schema:
        return f"must be {show(schema['const'])}"
    if "pattern" in schema:
        title = schema.get("title")
        return f"is not a valid {title}" if title else f"does not match {schema['pattern']}"
    return "is not allowed"


def mark_of(node) -> tuple[int, int]:
    mark = getattr(node, "start_mark", None)
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def validate_text(text: str, schemas: SchemaSet) -> tuple[int, list[tuple[int, int, str]]]:
    """Returns (number of documents, [(line, col, message)])."""
    problems: list[tuple[int, int, str]] = []
    count = 0
    try:
        for node, doc in load_documents(text):
            if doc is None:
                continue
            count += 1
            problems.extend(validate_document(node, doc, schemas))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(e, "problem", None) or str(e)
        context = getattr(e, "context", None)
        problems.append((line, col, f"invalid YAML: {problem}" + (f" ({context})" if context else "")))
    return count, problems


def validate_document(node, doc, schemas: SchemaSet) -> list[tuple[int, int, str]]:
    line, col = mark_of(node)
    if not isinstance(doc, dict):
        return [(line, col, f"a resource must be a mapping, got {yaml_type(doc)}")]
    kind = doc.get("kind")
    if kind is None:
        return [(line, col, "missing required field 'kind'")]
    kind_line, kind_col = mark_of(node_at(node, ["kind"]))
    if kind == "ReconcilerConfig" and schemas.config is not None:
        return [(kind_line, kind_col, "kind 'ReconcilerConfig' is the reconciler's configuration (ytempire.yaml), "
                                      "not a manifest of the desired-state repository; check it with --config FILE")]
    if not isinstance(kind, str) or kind not in schemas.kinds:
        known = sorted(schemas.kinds)
        msg = f"unknown kind {show(kind)}"
        if isinstance(kind, str):
            close = difflib.get_close_matches(kind, known, n=1, cutoff=0.6) or \
                [k for k in known if k.lower() == kind.lower()]
            if close:
                msg += f" (did you mean '{close[0]}'?)"
        msg += f"; known kinds: {', '.join(known)}"
        return [(kind_line, kind_col, msg)]
    validator = schemas.kinds[kind]
    name = doc.get("metadata", {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    label = f"{kind}/{name}" if isinstance(name, str) else kind
    out = []
    for error in validator.iter_errors(doc):
        for err_node, message in describe(error, node):
            l, c = mark_of(err_node)
            out.append((l, c, f"{label}: {message}"))
    out.sort()
    return out


def validate_config_text(text: str, schemas: SchemaSet) -> tuple[int, list[tuple[int, int, str]]]:
    """A reconciler configuration: one document, checked against the config schema."""
    if schemas.config is None:
        raise SystemExit("check_schemas.py: no reconciler configuration schema (x-ytempire-document: config) in the schema directory")
    problems: list[tuple[int, int, str]] = []
    count = 0
    try:
        for node, doc in load_documents(text):
            if doc is None:
                continue
            count += 1
            line, col = mark_of(node)
            if count > 1:
                problems.append((line, col, "a configuration file holds one document; this is a second one"))
                continue
            if not isinstance(doc, dict):
                problems.append((line, col, f"a configuration must be a mapping, got {yaml_type(doc)}"))
                continue
            for error in schemas.config.iter_errors(doc):
                for err_node, message in describe(error, node):
                    l, c = mark_of(err_node)
                    problems.append((l, c, f"ReconcilerConfig: {message}"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append((line, col, f"invalid YAML: {getattr(e, 'problem', None) or e}"))
    if count == 0 and not problems:
        problems.append((1, 1, "the file holds no configuration"))
    problems.sort()
    return count, problems


def check_config_file(path: Path, schemas: SchemaSet) -> tuple[int, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return 0, [f"{path}: error: cannot read: {e}"]
    count, problems = validate_config_text(text, schemas)
    return count, [f"{path}:{line}:{col}: error: {msg}" for line, col, msg in problems]


# --------------------------------------------------------------------------- walking and ignore rules

class IgnoreRules:
    """A subset of gitignore syntax for the `.ytempireignore` of a walked directory.

    Supported: blank lines and `#` comments; `!pattern` re-includes; a trailing `/`
    matches directories only; a pattern containing a `/` (other than a trailing one)
    is anchored at the directory holding the file, a pattern without one matches a
    name at any depth; `*` and `?` do not cross `/`, `**` does; `[...]` classes.
    The last matching pattern wins. As in git, a file inside an ignored directory
    cannot be re-included (the directory is not walked).
    """

    def __init__(self, lines: list[str]):
        self.rules: list[tuple[re.Pattern, bool, bool]] = []  # (regex, negated, dir_only)
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            if line.startswith("\\"):
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            line = line.lstrip("/")
            regex = self._translate(line)
            if not anchored:
                regex = "(?:.*/)?" + regex
            self.rules.append((re.compile("^" + regex + "$"), negated, dir_only))

    @staticmethod
    def _translate(pattern: str) -> str:
        out, i, n = "", 0, len(pattern)
        while i < n:
            c = pattern[i]
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("/**", i) and i + 3 == n:
                out += "/.*"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif c == "*":
                out += "[^/]*"
                i += 1
            elif c == "?":
                out += "[^/]"
                i += 1
            elif c == "[":
                j = pattern.find("]", i + 2)
                if j == -1:
                    out += re.escape(c)
                    i += 1
                else:
                    body = pattern[i + 1:j]
                    if body.startswith("!"):
                        body = "^" + body[1:]
                    out += "[" + body.replace("\\", "\\\\") + "]"
                    i = j + 1
            else:
                out += re.escape(c)
                i += 1
        return out

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        result = False
        for regex, negated, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            if regex.match(relpath):
                result = not negated
        return result


def walk(root: Path) -> Iterator[Path]:
    ignore_file = root / ".ytempireignore"
    rules = IgnoreRules(ignore_file.read_text(encoding="utf-8").splitlines()) if ignore_file.is_file() \
        else IgnoreRules([])
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(".") and not rules.ignored(rel_dir + d, True))
        for filename in sorted(filenames):
            if filename.endswith(YAML_SUFFIXES) and not rules.ignored(rel_dir + filename, False):
                yield Path(dirpath) / filename


def expand(paths: list[str]) -> Iterator[Path]:
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from walk(path)
        else:
            yield path


def check_file(path: Path, schemas: SchemaSet) -> tuple[int, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return 0, [f"{path}: error: cannot read: {e}"]
    count, problems = validate_text(text, schemas)
    return count, [f"{path}:{line}:{col}: error: {msg}" for line, col, msg in problems]


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate ytempire manifests against schemas/*.schema.json.")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to check")
    parser.add_argument("--quiet", "-q", action="store_true", help="print failures only")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="conformance mode: also print the errors of expected-invalid cases")
    parser.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS, help=f"schema directory (default {DEFAULT_SCHEMAS})")
    parser.add_argument("--config", action="append", default=[], metavar="FILE", type=Path,
                        help="a reconciler configuration (ytempire.yaml) to check; repeatable "
                             f"(default with PATHs: {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parent.parent)})")
    parser.add_argument("--no-config", action="store_true", help="with PATHs, do not check the example configuration")
    parser.add_argument("--expect-valid", action="append", default=[], metavar="DIR",
                        help="every YAML file directly in DIR must validate")
    parser.add_argument("--expect-invalid", action="append", default=[], metavar="DIR",
                        help="every YAML file directly in DIR must fail to validate")
    args = parser.parse_args(argv)
    if not args.paths and not args.expect_valid and not args.expect_invalid and not args.config:
        parser.error("nothing to check: give PATH..., --config FILE or --expect-valid / --expect-invalid")
    if args.config and args.no_config:
        parser.error("--config and --no-config exclude each other")

    schemas = SchemaSet(args.schemas)
    failed = False

    configs = list(args.config)
    if args.paths and not configs and not args.no_config and DEFAULT_CONFIG.is_file():
        configs = [DEFAULT_CONFIG]
    if args.paths or configs:
        files = documents = bad = 0
        checks = [(p, check_file) for p in expand(args.paths)] + [(p, check_config_file) for p in configs]
        for path, check in checks:
            files += 1
            count, errors = check(path, schemas)
            documents += count
            if errors:
                bad += 1
                failed = True
                for line in errors:
                    print(line)
        if not args.quiet:
            print(f"checked {documents} documents in {files} files: "
                  + ("all valid" if not bad else f"{bad} file(s) failed"), file=sys.stderr)

    if args.expect_valid or args.expect_invalid:
        cases = disagreements = 0
        for expect_valid, dirs in ((True, args.expect_valid), (False, args.expect_invalid)):
            for d in dirs:
                directory = Path(d)
                if not directory.is_dir():
                    print(f"{directory}: error: not a directory")
                    failed = True
                    disagreements += 1
                    continue
                for path in sorted(directory.iterdir()):
                    if not path.is_file() or not path.name.endswith(YAML_SUFFIXES):
                        continue
                    cases += 1
                    count, errors = check_file(path, schemas)
                    if expect_valid and (errors or count == 0):
                        disagreements += 1
                        print(f"{path}: DISAGREE: expected valid, but:" if errors
                              else f"{path}: DISAGREE: expected valid, but the file holds no document")
                        for line in errors:
                            print("    " + line)
                    elif not expect_valid and not errors:
                        disagreements += 1
                        reason = _expectation(path)
                        print(f"{path}: DISAGREE: expected invalid ({reason}), but it validated")
                    elif not expect_valid and args.verbose:
                        print(f"{path}: ok ({_expectation(path)})")
                        for line in errors:
                            print("    " + line)
        if disagreements:
            failed = True
        if not args.quiet:
            print(f"conformance: {cases} cases, {disagreements} disagreement(s)", file=sys.stderr)

    return 1 if failed else 0


def _expectation(path: Path) -> str:
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# expect:"):
                return line[len("# expect:"):].strip()
    except (OSError, UnicodeDecodeError):
        pass
    return "no '# expect:' line"


if __name__ == "__main__":
    sys.exit(main())
