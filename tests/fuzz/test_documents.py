"""Loading and compiling generated hostile documents never goes wrong in an unplanned way.

Every example either compiles, or fails with ``CompileError``/``WorkflowError`` carrying
diagnostics: never another exception, never a hang (a deadline per example), never memory
without bound (the document limits, checked with the process's peak RSS).

200 examples per test by default; ``POLYHOST_FUZZ_EXAMPLES=5000`` runs longer.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyhost import Catalog, CompileError, WorkflowError
from polyhost._limits import Limits
from polyhost.compile._checker import compile_workflow
from polyhost.compile._loading import load_workflow

EXAMPLES = int(os.environ.get("POLYHOST_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 200,
)
# Small limits keep each example quick; the hostile shapes meet them as they would the defaults.
LIMITS = Limits(max_document_bytes=2_000_000, max_document_values=200_000)
CATALOG = Catalog.with_builtins()
START_RSS_KIB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
MAX_GROWTH_KIB = 1024 * 1024

ODD_TEXT = st.sampled_from(
    [
        "\ud800",  # lone surrogates
        "a\udfff",
        "\x00",
        "\u202eevil\u202c",  # right-to-left override
        "e\u0301\u0301\u0301",  # combining marks
        "\ufeff",
        "\U0001f600",
        "{{",
        "{{ a.value }}",
        "{{ nowhere }}",
        "}}",
        "x" * 10_000,
        "{{ " + "1+" * 500 + "1 }}",
        "",
        "a\nb",
        '"',
        "\\",
    ]
)
HOSTILE_NUMBERS = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        1e30,
        -1e300,
        2**63,
        -(2**63) - 1,
        10**30,
        5e-324,
        0,
        -1,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_NUMBERS,
    st.text(max_size=20),
    ODD_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=5), ODD_TEXT), inner, max_size=4),
    ),
    max_leaves=20,
)


def render_json(value: Any, duplicate: bool) -> str:
    """JSON text, NaN and Infinity included; ``duplicate`` repeats each map's first key."""
    if isinstance(value, dict):
        items = [f"{render_json(k, False)}: {render_json(v, duplicate)}" for k, v in value.items()]
        if duplicate and items:
            items.append(items[0])
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render_json(v, duplicate) for v in value) + "]"
    return json.dumps(value, ensure_ascii=True)


def render_yaml(value: Any, duplicate: bool) -> str:
    """YAML flow text; floats in YAML's spelling (.nan, .inf) so they stay numbers."""
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value) if "e" not in repr(value) else f"{value:.6e}".replace("e", "e+", 1)
    if isinstance(value, dict):
        items = [
            f"? {render_yaml(k, False)} : {render_yaml(v, duplicate)}" for k, v in value.items()
        ]
        if duplicate and items:
            items.append(items[0])
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render_yaml(v, duplicate) for v in value) + "]"
    return json.dumps(value, ensure_ascii=True)


YAML_FRAGMENTS = st.sampled_from(
    [
        "&a [*a]",
        "[" * 5000 + "]" * 5000,
        "{a: " * 200 + "1" + "}" * 200,
        "!!binary aGVsbG8=",
        "!!python/object:os.system x",
        "!!set {a, b}",
        "{<<: {a: 1}, b: 2}",
        "{? 1.5 : x}",
        "{yes: no, on: off}",
        "2024-01-01",
        "0x_ff",
        "1:30:00",
        "*undefined",
        "{a: 1, a: 2}",
        "'unterminated",
        "[1, 2",
        "\t",
    ]
)


def bomb(levels: int, width: int) -> str:
    refs = ["x0: &x0 [lol]"]
    for level in range(1, levels):
        refs.append(f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * width) + "]")
    return "{" + ", ".join(refs) + "}"


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, str]:
    """(suffix, text) of a workflow with something hostile in one place."""
    as_json = draw(st.booleans())
    duplicate = draw(st.integers(0, 9)) == 0
    render = render_json if as_json else render_yaml
    if not as_json and draw(st.booleans()):
        hostile = draw(
            st.one_of(YAML_FRAGMENTS, st.builds(bomb, st.integers(2, 9), st.integers(2, 9)))
        )
    elif draw(st.integers(0, 4)) == 0:
        depth = draw(st.integers(30, 3000))
        hostile = "[" * depth + "]" * depth
    else:
        hostile = render(draw(VALUES), duplicate)
    where = draw(
        st.sampled_from(
            ["with", "version", "timeout", "retry", "id", "type", "inputs", "edges", "top"]
        )
    )
    with_value = hostile if where == "with" else render({"value": 1}, False)
    fields = {
        "id": render("a", False) if where != "id" else hostile,
        "type": render("core.transform", False) if where != "type" else hostile,
        "with": with_value
        if where != "with"
        else "{" + render("value", False) + ": " + hostile + "}",
    }
    if where == "timeout":
        fields["timeout"] = hostile
    if where == "retry":
        fields["retry"] = "{" + render("delay", False) + ": " + hostile + "}"
    node = "{" + ", ".join(f"{render(k, False)}: {v}" for k, v in fields.items()) + "}"
    second = render(
        {"id": "b", "type": "core.transform", "with": {"value": "{{ a.value }}"}}, False
    )
    top = {
        "version": hostile if where == "version" else "1",
        "nodes": f"[{node}, {second}]",
        "edges": hostile if where == "edges" else render([{"from": "a", "to": "b"}], False),
    }
    if where == "inputs":
        top["inputs"] = hostile
    if where == "top":
        top["extra"] = hostile
    text = "{" + ", ".join(f"{render(k, False)}: {v}" for k, v in top.items()) + "}"
    return (".json" if as_json else ".yaml"), text


def load_and_compile(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"doc{suffix}"
        path.write_bytes(data)
        try:
            workflow = load_workflow(path, limits=LIMITS, catalog=CATALOG)
            compile_workflow(workflow, CATALOG, limits=LIMITS)
        except CompileError as exc:
            assert exc.diagnostics, "a CompileError without diagnostics"
            for diagnostic in exc.diagnostics:
                assert diagnostic.code and diagnostic.message
                json.dumps(diagnostic.to_dict())  # printable by `compile --json`
        except WorkflowError as exc:
            assert exc.code and exc.message
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - START_RSS_KIB
    assert grown < MAX_GROWTH_KIB, f"peak RSS grew by {grown} KiB"


@FUZZ
@given(documents())
def test_hostile_documents_load_and_compile_or_fail_with_diagnostics(
    document: tuple[str, str],
) -> None:
    suffix, text = document
    load_and_compile(suffix, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from([".yaml", ".json"]))
def test_arbitrary_bytes_never_escape_as_another_exception(data: bytes, suffix: str) -> None:
    load_and_compile(suffix, data)
