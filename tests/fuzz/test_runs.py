"""Running generated hostile workflows never goes wrong in an unplanned way.

The workflows are made to misbehave at run time: long, deep and odd CEL in templates and
``when`` conditions (comprehension bombs, division by zero, integer overflow, odd Unicode),
hostile counts, lists and retry/timeout values for the core node types (from the document or
from the run's inputs), python nodes (``hostile_nodes.py``) that return lone surrogates, NaN,
huge integers, deep or self-containing values or raise anything at all, ``csv.query`` with a
``where`` from the inputs, YAML aliases, duplicate keys and hostile run inputs.

Each example either runs, ending recorded as completed, failed, cancelled or paused, or is
refused as a bad document or bad inputs (exit 2, ``CompileError``/``InputError``): never
another exception, never a traceback, never a hang (a watchdog kills it), never memory without
bound, never a run left ``running``; a failed node's error names the node and has a code.

Two tests: one through the real command line (``polyhost run --json`` in a subprocess, then
``polyhost runs show``), one in-process (``Host.run`` with a fresh home per example), which
runs many more examples in the same time. By default 150 in-process and 25 command-line
examples; ``POLYHOST_FUZZ_EXAMPLES=N`` runs N in-process and N/6 through the command line
(``POLYHOST_FUZZ_CLI_EXAMPLES`` sets that one on its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polyhost import Catalog, Host, HostConfig, PolyhostError, RunStatus
from polyhost._limits import Limits

_ENV_EXAMPLES = os.environ.get("POLYHOST_FUZZ_EXAMPLES")
EXAMPLES = int(_ENV_EXAMPLES or "150")
CLI_EXAMPLES = int(
    os.environ.get("POLYHOST_FUZZ_CLI_EXAMPLES") or (max(1, EXAMPLES // 6) if _ENV_EXAMPLES else 25)
)
HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "polyhost.toml"
POLYHOST = Path(sys.executable).parent / "polyhost"

# Small loop and branch limits keep each example quick; hostile counts meet them as they would
# the defaults. Retry waits are cut short so a retried failure does not wait for real.
LIMITS = Limits(
    max_loop_iterations=40,
    default_loop_iterations=30,
    max_parallel_branches=40,
    max_retry_delay=0.01,
)
LIMIT_ENV = {
    "POLYHOST_LIMIT_MAX_LOOP_ITERATIONS": "40",
    "POLYHOST_LIMIT_DEFAULT_LOOP_ITERATIONS": "30",
    "POLYHOST_LIMIT_MAX_PARALLEL_BRANCHES": "40",
    "POLYHOST_LIMIT_MAX_RETRY_DELAY": "0.01",
}
WALL_SECONDS = 30.0  # per example: a run past it is a hang
MAX_RSS_KIB = 1024 * 1024  # peak RSS of a `polyhost run` process
MAX_GROWTH_KIB = 1024 * 1024  # peak RSS growth of the test process (in-process runs)
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
# Node types whose failures may carry a code the workflow or the handler chose.
USER_CODES = {"core.fail", "fuzz.emit", "fuzz.aemit", "fuzz.pemit"}


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nineteen times in twenty: a hostile value that fails compiling hides the rest of the
    document from the run, so each one is kept rare."""
    # Not 0: hypothesis draws the ends of a range far more often than their share.
    return st.integers(0, 19).flatmap(lambda roll: bad if roll == 7 else good)


# -- CEL ----------------------------------------------------------------------------------

ATOMS = [
    "0",
    "1",
    "-1",
    "2.5",
    "-0.0",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615u",
    "1e308",
    "5e-324",
    "double('nan')",
    "double('inf')",
    "double('-inf')",
    "0.0 / 0.0",
    "true",
    "null",
    "''",
    "'a'",
    "'\\u202eevil'",
    "'\\x00'",
    "'\\U0001F600'",
    "'e\\u0301\\u0301'",
    "'\\ud800'",
    "'{{'",
    "'}}'",
    "b'\\xff\\x00'",
    "[]",
    "{}",
    "[1, 'a', null, 2.5]",
    "{'a': 1, 'b': [true]}",
    "{'a': 1, 'a': 2}",
    "{1.5: 1}",
    "{[1]: 1}",
    "lists.range(5)",
    "lists.range(100000000)",
    "timestamp('9999-12-31T23:59:59Z')",
    "duration('100000000000h')",
    "execution.id",
]
UNARY = [
    "-({})",
    "!({})",
    "size({})",
    "string({})",
    "int({})",
    "uint({})",
    "double({})",
    "bytes({})",
    "type({})",
    "dyn({})",
    "timestamp({})",
    "duration({})",
    "math.abs({})",
    "math.sqrt({})",
    "math.round({})",
    "({}).lowerAscii()",
    "({}).upperAscii()",
    "({}).trim()",
    "({}).reverse()",
    "({}).size()",
    "base64.encode({})",
    "base64.decode({})",
    "strings.quote({})",
    "[{}]",
    "{{'k': {}}}",
    "({}).k",
    "({})[0]",
    "({})['k']",
    "({}).split('')",
    "({}).join(',')",
    "lists.range({})",
    "({}).flatten()",
    "optional.of({}).orValue(1)",
    "({}).charAt(0)",
    "({}).substring(1)",
    "'%s and %d'.format([{}, 1])",
]
BINARY = [
    "({}) + ({})",
    "({}) - ({})",
    "({}) * ({})",
    "({}) / ({})",
    "({}) % ({})",
    "({}) == ({})",
    "({}) < ({})",
    "({}) && ({})",
    "({}) || ({})",
    "({}) in ({})",
    "({}).contains({})",
    "({}).startsWith({})",
    "({}).matches({})",
    "({}).replace({}, 'xxxxxxxx')",
    "({}).split({})",
    "({}).indexOf({})",
]
MACROS = ["map", "filter", "all", "exists", "exists_one"]
REGEXES = ["'(a+)+$'", "'a{1000}{1000}'", "'['", "'\\\\p{L}+'", "'(?i)x'"]


def long_expression(kind: str, n: int, ref: str) -> str:
    """One of the shapes that once crashed or ran away, ``n`` big."""
    if kind == "sum":
        return "+".join(["1"] * n)
    if kind == "parens":
        return "(" * n + ref + ")" * n
    if kind == "not":
        return "!" * n + "true"
    if kind == "member":
        return ref + ".x" * n
    if kind == "index":
        return ref + "[0]" * n
    if kind == "map_bomb":
        depth = max(1, n % 10)
        inner = "1"
        for level in range(depth):
            inner = f"lists.range(10).map(v{level}, {inner})"
        return inner
    if kind == "replace_bomb":
        return "'aa'" + ".replace('a', 'aaaaaaaaaaaaaaaa')" * max(1, n % 12)
    if kind == "join":
        return f"lists.range({n}).map(i, 'xxxxxxxxxxxxxxxx').join('')"
    if kind == "literal":
        return "'" + "x" * (n * 50) + "'"
    return "'" + "\\u00e9" * n + "'"


LONG_KINDS = ["sum", "parens", "not", "member", "index", "map_bomb", "replace_bomb", "join"]
LONG_KINDS += ["literal", "escapes"]


def cel(refs: list[str]) -> st.SearchStrategy[str]:
    """CEL source text reading the names in ``refs``."""
    names = refs or ["1"]
    atoms = st.one_of(st.sampled_from(ATOMS), st.sampled_from(names), st.sampled_from(REGEXES))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(lambda f, a: f.format(a), st.sampled_from(UNARY), inner),
            st.builds(lambda f, a, b: f.format(a, b), st.sampled_from(BINARY), inner, inner),
            st.builds(lambda c, a, b: f"({c}) ? ({a}) : ({b})", inner, inner, inner),
            st.builds(
                lambda over, macro, body: f"({over}).{macro}(e, {body})",
                inner,
                st.sampled_from(MACROS),
                st.one_of(inner, st.sampled_from(["e", "e + e", "e > 0", "size(e) > 0"])),
            ),
        )

    return st.one_of(
        st.recursive(atoms, extend, max_leaves=8),
        st.builds(
            long_expression,
            st.sampled_from(LONG_KINDS),
            mostly(st.sampled_from([3, 50, 90, 120, 450]), st.sampled_from([501, 2000, 20_000])),
            st.sampled_from(names),
        ),
    )


def template(refs: list[str]) -> st.SearchStrategy[str]:
    """A string with templates in it: whole (keeps the value's type) or inside text."""
    expression = cel(refs)
    return mostly(
        st.one_of(
            st.builds(lambda e: "{{ " + e + " }}", expression),
            st.builds(lambda e, f: "a {{ " + e + " }} b {{" + f + "}}", expression, expression),
        ),
        st.sampled_from(
            [
                "{{",
                "}}",
                "{{ }}",
                "\\{{ x }}",
                "{{ ''' it's ''' }}",
                "{{ '}}' }}",
                "\u202e\x00\ufeff",
                "plain",
            ]
        ),
    )


# -- values: documents and run inputs ------------------------------------------------------

ODD_TEXT = st.sampled_from(
    ["", "a", "\u202eevil", "e\u0301\u0301", "\ufeff", "\U0001f600", "\x00", "{{", "x" * 5000]
)
# Only run inputs may hold these: a document cannot (it is Unicode text with finite numbers).
INPUT_ONLY = st.sampled_from(
    ["\ud800", "a\udfff", float("nan"), float("inf"), -float("inf"), 10**30, -(10**30)]
)
HOSTILE_INTS = st.sampled_from([0, 1, 3, -1, 39, 40, 41, 1000, 10**6, 2**31, 2**63 - 1, -(2**63)])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    HOSTILE_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    ODD_TEXT,
    st.text(max_size=10),
)


def nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


class Built:
    """A large value, built when the example runs: hypothesis shows (and copies) examples
    recursively, which a value 100,000 deep would not survive."""

    def __init__(self, kind: str, size: int) -> None:
        self.kind, self.size = kind, size

    def __repr__(self) -> str:
        return f"Built({self.kind!r}, {self.size})"

    def build(self) -> Any:
        return nested(self.size) if self.kind == "nested" else list(range(self.size))

    def json(self) -> str:
        """The built value as JSON text, made without recursion."""
        if self.kind == "range":
            return json.dumps(self.build())
        text = "0"
        for level in range(self.size):
            text = f"[{text}]" if level % 2 else f'{{"k": {text}}}'
        return text


def to_json(value: Any) -> str:
    """JSON text of a value that may hold ``Built`` parts (NaN and Infinity as Python writes
    them, lone surrogates escaped)."""
    if isinstance(value, Built):
        return value.json()
    if isinstance(value, dict):
        items = (f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def built(value: Any) -> Any:
    """``value`` with every ``Built`` in it built."""
    if isinstance(value, Built):
        return value.build()
    if isinstance(value, dict):
        return {k: built(v) for k, v in value.items()}
    if isinstance(value, list):
        return [built(v) for v in value]
    return value


def input_values() -> st.SearchStrategy[Any]:
    flat = st.one_of(SCALARS, INPUT_ONLY)
    tree = st.recursive(
        flat,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(st.one_of(st.text(max_size=4), ODD_TEXT), inner, max_size=4),
        ),
        max_leaves=12,
    )
    return st.one_of(
        tree,
        st.builds(Built, st.just("nested"), st.sampled_from([10, 63, 65, 127, 129, 2000, 100_000])),
        st.builds(Built, st.just("range"), st.sampled_from([0, 5, 40, 41, 1000, 100_000])),
        st.sampled_from(["x > 1", "(" * 2000 + "x = 1" + ")" * 2000, "not " * 5000 + "x = 1"]),
    )


INPUT_NAMES = ["x", "n", "s", "w", "l"]


# -- workflows ------------------------------------------------------------------------------

EMIT_KINDS = sorted(
    [
        "surrogate",
        "surrogate_key",
        "surrogate_nested",
        "nan",
        "inf",
        "huge_int",
        "big_int",
        "min_int",
        "tiny",
        "deep",
        "deep_map",
        "self_loop",
        "bytes",
        "set",
        "tuple",
        "int_key",
        "none_key",
        "float_key",
        "tuple_key",
        "object",
        "unprintable",
        "unprintable_out",
        "none",
        "list",
        "string",
        "wide",
        "long_text",
        "odd_text",
        "print",
        "print_stderr",
        "value_error",
        "surrogate_error",
        "node_error",
        "recursion",
        "memory_error",
        "system_exit",
        "keyboard_interrupt",
        "generator_exit",
        "stop_iteration",
        "echo",
    ]
)
DURATIONS = mostly(
    st.sampled_from([0, "0s", "1ms", "20ms", 0.05, "1s", "1h", 3600, 31_536_000]),
    st.sampled_from(["-1s", "nan", "1e400s", "abc", "365d", 1e-9]),
)
FAIL_CODES = mostly(
    st.sampled_from(["E_FIRE", "snake_code", "\u202e", "with space", "limit_exceeded", "x" * 128]),
    st.sampled_from(["", "x" * 200, "{{ input.s }}"]),
)


@st.composite
def node_settings(draw: st.DrawFn, refs: list[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:
        extra["when"] = draw(cel(refs))
    if draw(st.integers(0, 5)) == 0:
        extra["retry"] = {
            "attempts": draw(mostly(st.integers(1, 3), st.sampled_from([0, -1, 1001, 2**63 - 1]))),
            "delay": draw(DURATIONS),
            "backoff": draw(mostly(st.sampled_from(["fixed", "exponential"]), st.just("linear"))),
            "max_delay": draw(DURATIONS),
        }
    if draw(st.integers(0, 4)) == 0:
        extra["timeout"] = draw(DURATIONS)
    if draw(st.booleans()):  # so that what follows a failure runs too
        extra["on_error"] = draw(mostly(st.sampled_from(["continue", "fail"]), st.just("retry")))
    return extra


@st.composite
def node_with(
    draw: st.DrawFn, node_type: str, refs: list[str], depth: int, pool: bool
) -> dict[str, Any]:
    """The ``with`` (and ``body``) of a node of ``node_type``."""
    text = template(refs)
    count = st.one_of(HOSTILE_INTS, st.sampled_from(["{{ input.n }}", "{{ input.x }}"]))
    if node_type == "core.transform":
        return {"with": {"value": draw(st.one_of(text, st.lists(text, max_size=3)))}}
    if node_type == "core.log":
        level = draw(mostly(st.sampled_from(["info", "error", "debug"]), st.just("LOUD")))
        return {"with": {"message": draw(text), "level": level}}
    if node_type == "core.fail":
        return {"with": {"message": draw(text), "code": draw(FAIL_CODES)}}
    if node_type == "core.condition":
        return {"with": {"if": draw(st.one_of(cel(refs), text))}}
    if node_type == "core.switch":
        case = mostly(st.sampled_from(["a", "b", "", "é", "\u202e", "x" * 300]), st.just("default"))
        cases = draw(st.lists(case, max_size=4, unique=True))
        return {"with": {"value": draw(text), "cases": cases}}
    if node_type == "core.wait":
        if draw(st.booleans()):
            return {"with": {"duration": draw(st.sampled_from([0, "1ms", "10ms", "61s", "8760h"]))}}
        until = ["2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "soon", "{{ input.s }}"]
        return {"with": {"until": draw(st.sampled_from(until))}}
    if node_type == "csv.query":
        where = draw(st.sampled_from(["{{ input.w }}", "a > 1", "b = 'é'", "{{ input.s }}"]))
        return {"with": {"path": "data.csv", "where": where}}
    if node_type in ("fuzz.emit", "fuzz.aemit", "fuzz.pemit"):
        params: dict[str, Any] = {"kind": draw(st.sampled_from(EMIT_KINDS))}
        params["depth"] = draw(st.sampled_from([10, 127, 129, 5000]))
        params["size"] = draw(st.sampled_from([10, 10_000, 20_000_000]))
        if params["kind"] == "node_error":
            params["code"] = draw(FAIL_CODES)
            params["field"] = draw(st.one_of(st.none(), ODD_TEXT))
        return {"with": params}
    if node_type == "fuzz.echo":
        return {"with": {"v": draw(text), "w": draw(st.dictionaries(ODD_TEXT, text, max_size=2))}}
    # core.loop and core.parallel
    scope = "loop" if node_type == "core.loop" else "parallel"
    params = {}
    how = draw(st.sampled_from(["count", "over", "while", "do_while"]))
    if how == "count" or (node_type == "core.parallel" and how != "over"):
        params["count"] = draw(count)
    elif how == "over":
        params["over"] = draw(st.one_of(st.sampled_from(["{{ input.l }}", "{{ input.x }}"]), text))
    else:
        params[how] = draw(cel([*refs, f"{scope}.index"]))
    if node_type == "core.loop" and draw(st.booleans()):
        params["max_iterations"] = draw(count)
    if node_type == "core.parallel" and draw(st.booleans()):
        params["concurrency"] = draw(st.one_of(HOSTILE_INTS, st.just("{{ input.n }}")))
    inner_refs = [*refs, f"{scope}.item", f"{scope}.index"]
    body = draw(node_list(inner_refs, depth + 1, pool, prefix=f"{scope}{depth}_"))
    return {"with": params, "body": body}


TOP_TYPES = [
    "core.transform",
    "core.log",
    "core.fail",
    "core.condition",
    "core.switch",
    "core.wait",
    "core.loop",
    "core.parallel",
    "csv.query",
    "fuzz.emit",
    "fuzz.aemit",
    "fuzz.echo",
]


@st.composite
def node_list(
    draw: st.DrawFn, refs: list[str], depth: int, pool: bool, prefix: str = "n"
) -> dict[str, Any]:
    """A workflow's (or body's) ``nodes``, ``edges`` and ``outputs``: a chain of nodes."""
    types = [t for t in TOP_TYPES if depth < 2 or t not in ("core.loop", "core.parallel")]
    if depth > 0:
        types.remove("core.wait")  # a body's wait is not durable: it would sleep for real
    if pool:  # isolation: process (only through the command line: a pool per host is slow)
        types.append("fuzz.pemit")
    count = draw(st.integers(1, 4 if depth == 0 else 2))
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    seen = list(refs)
    for index in range(count):
        node_id = f"{prefix}{index}"
        node_type = draw(st.sampled_from(types))
        node = {"id": node_id, "type": node_type, **draw(node_with(node_type, seen, depth, pool))}
        node.update(draw(node_settings(seen)))
        if nodes:
            previous = nodes[-1]
            port = draw(st.sampled_from(ports_of(previous)))
            edges.append({"from": previous["id"], "to": node_id, "port": port})
        nodes.append(node)
        seen += [f"{node_id}.value", f"{node_id}.v", f"{node_id}.results", node_id]
    outputs = {
        name: draw(template(seen)) for name in draw(st.lists(ODD_TEXT, max_size=2, unique=True))
    }
    return {"nodes": nodes, "edges": edges, "outputs": outputs}


def ports_of(node: dict[str, Any]) -> list[str]:
    if node["type"] == "core.condition":
        return ["true", "false", "error"]
    if node["type"] == "core.switch":
        return [*node["with"]["cases"], "default", "error"]
    return ["out", "error"]


@st.composite
def workflows(draw: st.DrawFn, with_pool: bool = False) -> tuple[str, str, dict[str, Any]]:
    """(suffix, text, inputs): a workflow document and the inputs to run it with."""
    refs = [f"input.{name}" for name in INPUT_NAMES] + ["var.v", "input"]
    document: dict[str, Any] = {"version": 1, "id": "fuzz", "variables": {"v": draw(SCALARS)}}
    document.update(draw(node_list(refs, 0, with_pool)))
    if not document["outputs"]:
        del document["outputs"]
    if draw(st.integers(0, 3)) == 0:
        names = draw(st.lists(st.sampled_from(INPUT_NAMES), max_size=3, unique=True))
        kinds = st.sampled_from(["string", "integer", "array", "object", "number"])
        properties = {name: {"type": draw(kinds)} for name in names}
        document["inputs"] = {"type": "object", "properties": properties}
    given_names = st.sampled_from([*INPUT_NAMES, "\u202e", ""])
    inputs = draw(st.dictionaries(given_names, input_values(), max_size=4))
    as_yaml = draw(st.booleans())
    twist = draw(st.sampled_from(TWISTS)) if as_yaml else "none"
    first = document["nodes"][0]
    if twist == "alias" and first["type"] not in ("core.loop", "core.parallel"):
        document["nodes"].append({"id": "alias", "type": first["type"], "with": "ALIAS"})
    text = json.dumps(document, ensure_ascii=False)
    if as_yaml:
        text = yaml_twist(text, twist, draw(st.integers(2, 9)), draw(st.integers(2, 9)))
    elif draw(st.integers(0, 9)) == 7:
        text = text.replace('"version": 1,', '"version": 1, "version": 1,', 1)
    return (".yaml" if as_yaml else ".json"), text, inputs


TWISTS = ["none", "alias", "none", "bomb", "none", "alias", "bomb", "duplicate", "nan", "inf"]


def yaml_twist(text: str, twist: str, width: int, levels: int) -> str:
    """JSON text (which is YAML) with an alias, a bomb, a duplicate key or a non-finite number."""
    if twist == "alias" and '"with": "ALIAS"' in text:
        # The first node's `with` is anchored; a copy of the node at the end reads it again.
        head, _, rest = text.partition('"with": {')
        text = head + '"with": &w {' + rest.replace('"with": "ALIAS"', '"with": *w')
    elif twist == "bomb":
        refs = ["&b0 [lol]"]
        for level in range(1, levels):
            refs.append(f"&b{level} [" + ", ".join([f"*b{level - 1}"] * width) + "]")
        bomb = "[" + ", ".join(refs) + "]"
        text = text.replace('"variables": {"v": ', f'"variables": {{"bomb": {bomb}, "v": ', 1)
    elif twist == "duplicate":
        text = text.replace('"id": "fuzz"', '"id": "fuzz", "id": "again"', 1)
    elif twist in ("nan", "inf"):
        number = ".nan" if twist == "nan" else "-.inf"
        text = text.replace('"timeout": "1ms"', f'"timeout": {number}')
    return text


def emitting(
    node_type: str, kind: str, inputs: dict[str, Any] | None = None
) -> tuple[str, str, dict[str, Any]]:
    """A one-node workflow: a python node of ``node_type`` doing ``kind``, fed ``input.x``."""
    node = {"id": "a", "type": node_type, "with": {"kind": kind, "x": "{{ input.x }}"}}
    return ".json", json.dumps({"version": 1, "nodes": [node]}), inputs or {"x": 1}


CSV_TEXT = 'a,b\n1,é\n2,x\n,\n3,"q""uote"\n'


# -- properties -----------------------------------------------------------------------------


def check_error(error: Any, node_type: str | None) -> None:
    """A failed node's error: a code that is snake_case, or one the user chose."""
    assert isinstance(error, dict), error
    code = error.get("code")
    assert isinstance(code, str) and code, error
    assert isinstance(error.get("message"), str), error
    if code == "internal_error":  # only what a handler raising SystemExit or Ctrl-C gets
        assert error["message"].startswith("the node stopped with"), error
    if node_type not in USER_CODES:
        assert SNAKE.match(code), error
    else:
        assert len(code) <= 128 and code.isprintable(), error


def node_types(document: dict[str, Any] | None) -> dict[str, str]:
    """Every node id in a document, bodies included, with its type."""
    found: dict[str, str] = {}
    pending = [document] if isinstance(document, dict) else []
    while pending:
        part = pending.pop()
        for node in part.get("nodes") or []:
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                found[node["id"]] = str(node.get("type"))
                if isinstance(node.get("body"), dict):
                    pending.append(node["body"])
    return found


def check_result(result: dict[str, Any], types: dict[str, str]) -> None:
    """The ``run --json`` object of a run that started."""
    assert isinstance(result.get("execution_id"), str) and result["execution_id"], result
    status = result.get("status")
    assert status in ("completed", "failed", "cancelled", "paused"), status
    if status == "failed":
        error = result.get("error")
        assert isinstance(error, dict), error
        if error.get("node") is None:  # the run's `outputs` failed, not a node
            assert error["message"].startswith("outputs."), error
        check_error(error, types.get(error["node"]))
    for node_id, node in (result.get("nodes") or {}).items():
        assert node["status"] not in ("running", "pending"), (node_id, node)
        if node["status"] == "failed":
            check_error(node["error"], types.get(node_id))


# -- through the command line ---------------------------------------------------------------


def watched(args: list[bytes | str], env: dict[str, str], cwd: Path) -> tuple[int, bytes, str, int]:
    """(exit code, stdout, stderr, peak RSS in KiB) of one command, killed when it runs too long
    or grows too big; its whole process group dies with it either way."""
    out_path, err_path = cwd / "stdout", cwd / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            args, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
    deadline = time.monotonic() + WALL_SECONDS
    problem = None
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            rss = _rss_kib(process.pid)
            if rss > MAX_RSS_KIB:
                problem = f"peak RSS past {MAX_RSS_KIB} KiB: {rss} KiB"
            elif time.monotonic() > deadline:
                problem = f"still running after {WALL_SECONDS} s"
            if problem:
                os.killpg(process.pid, signal.SIGKILL)
                os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
    finally:
        with contextlib.suppress(ProcessLookupError):
            # Whatever the run started (process-pool workers) ends with it.
            os.killpg(process.pid, signal.SIGKILL)
    stderr = err_path.read_text(errors="replace")
    assert problem is None, f"{problem}\n{stderr[-3000:]}"
    return process.returncode, out_path.read_bytes(), stderr, usage.ru_maxrss


def _rss_kib(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * resource.getpagesize() // 1024


def cli_input_args(inputs: dict[str, Any], folder: Path) -> list[bytes | str]:
    """``--input K=V`` for each input (JSON text, or raw bytes for text that is not UTF-8),
    except that a value JSON cannot hold inline goes in an ``--inputs`` file."""
    args: list[bytes | str] = []
    for name, value in inputs.items():
        if isinstance(value, str) and any("\udc80" <= c <= "\udcff" for c in value):
            args += ["--input", name.encode() + b"=" + value.encode("utf-8", "surrogateescape")]
        else:
            text = to_json(value)
            if len(text) > 60_000:  # past what one argument should hold
                path = folder / f"input-{len(args)}.json"
                path.write_text("{" + json.dumps(name) + ": " + text + "}")
                args += ["--inputs", str(path)]
            else:
                args += ["--input", f"{name}={text}"]
    return args


def run_cli(suffix: str, text: str, inputs: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "data.csv").write_text(CSV_TEXT)
        path = folder / f"flow{suffix}"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("POLYHOST_")},
            **LIMIT_ENV,
            "POLYHOST_HOME": str(folder / "home"),
        }
        args: list[bytes | str] = [str(POLYHOST), "run", str(path), "--json"]
        args += ["--nodes", str(MANIFEST), *cli_input_args(inputs, folder)]
        code, stdout, stderr, _ = watched(args, env, folder)
        assert code in (0, 1, 2), (code, stderr[-3000:])
        assert "Traceback" not in stderr, stderr[-3000:]
        result = json.loads(stdout)  # exactly one JSON object, nothing else
        assert isinstance(result, dict), result
        if code == 2:
            return
        try:
            document = json.loads(text)
        except ValueError:
            document = None  # YAML with aliases: the ids are still in the run's nodes
        check_result(result, node_types(document))
        assert (code == 0) == (result["status"] in ("completed", "paused")), (code, result)
        show = [str(POLYHOST), "runs", "show", result["execution_id"], "--json"]
        code, stdout, stderr, _ = watched(show, env, folder)
        assert code == 0 and "Traceback" not in stderr, (code, stderr[-3000:])
        shown = json.loads(stdout)
        assert shown["status"] == result["status"], (shown["status"], result["status"])


@pytest.mark.timeout(max(120, int(CLI_EXAMPLES * 2 * WALL_SECONDS / 5)))
@settings(
    max_examples=CLI_EXAMPLES,
    deadline=None,  # the watchdog in `watched` bounds each run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=_ENV_EXAMPLES is None,
)
@given(workflows(with_pool=True))
# A handler raising KeyboardInterrupt killed its worker process, with a traceback on stderr.
@example(emitting("fuzz.pemit", "keyboard_interrupt"))
def test_hostile_runs_through_the_command_line(case: tuple[str, str, dict[str, Any]]) -> None:
    run_cli(*case)


# -- in-process -----------------------------------------------------------------------------

CATALOG = Catalog.with_builtins()
CATALOG.load_manifest(MANIFEST)
START_RSS_KIB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def run_in_process(suffix: str, text: str, inputs: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "data.csv").write_text(CSV_TEXT)
        path = folder / f"flow{suffix}"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        config = HostConfig(home=folder / "home", limits=LIMITS, allowed_roots=[folder])
        async with Host(config, catalog=CATALOG) as host:
            store = host.store
            assert store is not None
            result = None
            try:
                with anyio.fail_after(WALL_SECONDS):
                    result = await host.run(path, inputs)
            except PolyhostError as exc:
                assert exc.code and SNAKE.match(exc.code), exc
                assert str(exc)
            if result is not None:
                try:
                    document = json.loads(text)
                except ValueError:
                    document = None
                check_result(json.loads(json.dumps(result.to_dict())), node_types(document))
                await store.flush()
                assert store.get_result(result.execution_id).status is result.status
            await store.flush()
            left = [run for run in store.list_runs() if not run.status.is_final]
            assert all(run.status is RunStatus.PAUSED for run in left), left
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - START_RSS_KIB
    assert grown < MAX_GROWTH_KIB, f"peak RSS grew by {grown} KiB"


@pytest.mark.timeout(max(120, int(EXAMPLES * WALL_SECONDS / 10)))
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # anyio.fail_after bounds each run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=_ENV_EXAMPLES is None,
)
@given(workflows())
# Found by this test: a handler raising GeneratorExit stopped the engine (an exception group out
# of Host.run, a traceback from the command line); inputs that are not JSON values, or nested
# past what Python's recursion takes, escaped Host.run as UnicodeEncodeError,
# ExpressionEvalError or RecursionError.
@example(emitting("fuzz.emit", "generator_exit"))
@example(emitting("fuzz.aemit", "generator_exit"))
@example(emitting("fuzz.emit", "keyboard_interrupt"))
@example(emitting("fuzz.emit", "system_exit"))
@example(emitting("fuzz.echo", "", {"x": "\ud800"}))
@example(emitting("fuzz.echo", "", {"x": {"a\udfff": 1}}))
@example(emitting("fuzz.echo", "", {"x": 10**30}))
@example(emitting("fuzz.echo", "", {"x": Built("nested", 100_000)}))
def test_hostile_runs_in_process(case: tuple[str, str, dict[str, Any]]) -> None:
    suffix, text, inputs = case
    anyio.run(run_in_process, suffix, text, built(inputs))
