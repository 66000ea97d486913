"""Expression limits: size and depth checked before parsing, a cost budget per evaluation,
value depth in scopes, and the CEL forms that must parse and evaluate (extension namespaces,
quoted fields, string literals holding ``}}``)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyhost import _native
from polyhost._errors import ExpressionError, LimitExceededError
from polyhost._limits import Limits
from polyhost.compile._expressions import (
    Expression,
    ExpressionLimitError,
    Scope,
    compile_template,
    split_template,
)
from tests.cli.conftest import polyhost_command

BOMB_LIST = "[0,1,2,3,4,5,6,7,8,9]"


def bomb(levels: int = 8) -> str:
    source = BOMB_LIST
    for name in "abcdefghij"[:levels]:
        source = f"{BOMB_LIST}.map({name}, {source})"
    return source


def evaluate(source: str, **variables: Any) -> Any:
    scope = Scope()
    for name, value in variables.items():
        scope.set(name, value)
    return Expression(source).evaluate(scope)


# depth and size, before parsing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "+".join(["1"] * 10_000),
        "var" + ".x" * 20_000,
        "m" + "['x']" * 5_000,
        "!" * 20_000 + "true",
        "-" * 20_000 + "1",
        "'a'" + ".size()" * 3_000,
        "(" * 90 + "+".join(["1"] * 400) + ")" * 90 + "+1" * 200,
        " ? ".join(["true"] * 3_000) + " : 1" * 2_999,
    ],
    ids=["plus", "member", "index", "not", "neg", "method", "groups", "ternary"],
)
def test_deep_expressions_are_refused_before_parsing(source: str) -> None:
    with pytest.raises(ExpressionLimitError) as caught:
        Expression(source)
    assert caught.value.limit == "max_expression_depth"
    assert caught.value.code == "limit_exceeded"
    assert "max_expression_depth = 500" in caught.value.message


def test_a_few_hundred_terms_work() -> None:
    assert evaluate("+".join(["1"] * 400)) == 400
    assert evaluate(" + ".join(["m.a.b"] * 300), m={"a": {"b": 1}}) == 300
    deep = _scope(512, m=_nested_x(300))
    assert Expression("m" + ".x" * 300).evaluate(deep) == 1


def _nested_x(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


def test_long_expressions_are_refused() -> None:
    with pytest.raises(ExpressionLimitError) as caught:
        Expression("'" + "a" * 70_000 + "'")
    assert caught.value.limit == "max_expression_bytes"
    small = Limits(max_expression_bytes=100)
    with pytest.raises(ExpressionLimitError, match="max_expression_bytes = 100"):
        Expression("1 + " * 30 + "1", small)


def test_the_depth_limit_is_a_setting() -> None:
    source = "+".join(["1"] * 100)
    with pytest.raises(ExpressionLimitError, match="max_expression_depth = 50"):
        Expression(source, Limits(max_expression_depth=50))
    assert Expression(source, Limits(max_expression_depth=200)).evaluate(Scope()) == 100


def test_the_deepest_accepted_expression_runs_on_a_small_thread_stack() -> None:
    """Python threads may get less stack than the main thread: the default depth limit fits
    in 2 MiB (parse and evaluate), so evaluation in worker threads is safe too."""
    sources = [
        "+".join(["1"] * 495),
        "m" + ".x" * 495,
        "'a'" + ".lowerAscii()" * 240,
    ]
    results: list[Any] = []

    def work() -> None:
        for source in sources:
            results.append(Expression(source).evaluate(_scope(512, m=_nested_x(495))))

    previous = threading.stack_size(2 * 1024 * 1024)
    try:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    assert results == [495, 1, "a"]


def _scope(max_value_depth: int = 128, **variables: Any) -> Scope:
    scope = Scope(max_value_depth)
    for name, value in variables.items():
        scope.set(name, value)
    return scope


_atoms = st.sampled_from(["1", "m", "m.x", "'s'", "true", "[1]", "{'a': 1}", "(1)", "x"])
_joins = st.sampled_from(["+", "-", "*", "&&", "||", "==", "<", ".", "[", "(", "!", "?", ":"])


@settings(max_examples=150, deadline=None)
@given(
    atom=_atoms,
    join=_joins,
    count=st.integers(min_value=1, max_value=30_000),
    wrap=st.integers(min_value=0, max_value=120),
)
def test_generated_long_and_deep_expressions_never_crash(
    atom: str, join: str, count: int, wrap: int
) -> None:
    closing = {"[": "]", "(": ")"}.get(join, "")
    source = "(" * wrap + join.join([atom] * count) + closing * (count - 1) + ")" * wrap
    try:
        expression = Expression(source)
    except ExpressionError:
        return
    with contextlib.suppress(ExpressionError):
        expression.evaluate(_scope(m={"x": 1}))


# the cost budget ------------------------------------------------------------------------------


def test_a_comprehension_bomb_stops_at_the_budget() -> None:
    with pytest.raises(ExpressionLimitError) as caught:
        evaluate(bomb())
    assert caught.value.limit in ("max_expression_steps", "max_expression_memory")
    with pytest.raises(ExpressionLimitError, match="max_expression_steps = 1000"):
        Expression(bomb(4), Limits(max_expression_steps=1_000)).evaluate(Scope())
    two = Expression(bomb(2)).evaluate(Scope())
    assert len(two) == 10 and len(two[0]) == 10


def test_growing_values_stop_at_the_memory_budget() -> None:
    # Each level doubles a string through a comprehension variable: 2**36 bytes at the end.
    doubling = "v30 + v30"
    for k in reversed(range(30)):
        doubling = f"[v{k} + v{k}].map(v{k + 1}, {doubling})"
    doubling = f"['ab'].map(v0, {doubling})"
    squaring = "s.replace('', s.replace('', s.replace('', s)))"
    for source in [doubling, squaring]:
        with pytest.raises(ExpressionLimitError, match="max_expression_memory"):
            evaluate(source, s="x" * 2_000)
    quoted = "'\"'"
    for _ in range(60):
        quoted = f"strings.quote({quoted})"
    with pytest.raises(ExpressionLimitError, match="max_expression_memory"):
        evaluate(quoted)


def test_the_budget_is_per_evaluation() -> None:
    expression = Expression("xs.map(x, x * 2).filter(y, y > 2)", Limits(max_expression_steps=2_000))
    scope = _scope(xs=list(range(1_000)))
    for _ in range(5):
        assert len(expression.evaluate(scope)) == 998


def test_replace_keeps_its_meaning() -> None:
    assert evaluate("'a-b-c'.replace('-', '+')") == "a+b+c"
    assert evaluate("'a-b-c'.replace('-', '+', 1)") == "a+b-c"
    assert evaluate("'a-b-c'.replace('-', '+', -1)") == "a+b+c"
    assert evaluate("'ab'.replace('', '.')") == ".a.b."
    with pytest.raises(ExpressionError, match="'replace'"):
        evaluate("1.replace('a', 'b')")


def test_the_bomb_is_bounded_in_a_real_process() -> None:
    """Fails fast, with the process's peak RSS well under the 2.7 GB it once reached."""
    script = textwrap.dedent(
        f"""
        import json, time
        from polyhost.compile._expressions import Expression, Scope, ExpressionLimitError
        start = time.monotonic()
        try:
            Expression({bomb()!r}).evaluate(Scope())
            outcome = "finished"
        except ExpressionLimitError as exc:
            outcome = exc.limit
        # VmHWM is this process's own peak: ru_maxrss would count the test process's size,
        # which a child forked from it inherits.
        with open("/proc/self/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - start,
                           "peak_kib": peak}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(done.stdout)
    assert found["outcome"] in ("max_expression_steps", "max_expression_memory")
    assert found["seconds"] < 3
    assert found["peak_kib"] < 400 * 1024


def test_costly_evaluations_release_the_gil() -> None:
    """While one thread runs a costly comprehension, another thread keeps running Python."""
    expression = Expression(
        "xs.map(a, xs.map(b, a * b).size()).size()", Limits(max_expression_steps=10**8)
    )
    scope = _scope(xs=list(range(800)))
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.01)
        before = ticks
        assert expression.evaluate(scope) == 800
        during = ticks - before
    finally:
        done.set()
        counter.join()
    assert during > 1_000


# values in scope ------------------------------------------------------------------------------


def test_a_deep_value_in_scope_is_a_typed_error() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    scope = Scope()
    with pytest.raises(LimitExceededError) as caught:
        scope.set("x", deep)
    assert caught.value.limit == "max_value_depth"
    small = Scope(8)
    small.set("ok", _nested_x(8))
    with pytest.raises(LimitExceededError, match="max_value_depth = 8"):
        small.set("deep", _nested_x(9))
    with pytest.raises(LimitExceededError):
        small.child().set("deep", _nested_x(9))
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(LimitExceededError):
        scope.set("looped", looped)


# conformance ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("optional.of(1).value()", 1),
        ("optional.none().hasValue()", False),
        ("optional.ofNonZeroValue(0).orValue(7)", 7),
        ("base64.encode(b'hi')", "aGk="),
        ("base64.decode('aGk=') == b'hi'", True),
        ("lists.range(3)", [0, 1, 2]),
        ("strings.quote('a\"b')", '"a\\"b"'),
        ("math.greatest(1, 5, 3)", 5),
        ("math.abs(-2)", 2),
        ("type(timestamp('2024-01-01T00:00:00Z')) == google.protobuf.Timestamp", True),
        ("type(duration('1s')) == google.protobuf.Duration", True),
        ("type(1) == int && type('a') == string", True),
        ("m.`content-type`", "json"),
        ("m.?`content-type`.orValue('none')", "json"),
        ("m.?`no-such`.orValue('none')", "none"),
        ("m.`a.b` + m.`x`", "dotx"),
        ("'m.`content-type`'", "m.`content-type`"),
    ],
)
def test_cel_forms_that_evaluate(source: str, expected: Any) -> None:
    expression = Expression(source)
    assert expression.references <= {"m"}
    scope = _scope(m={"content-type": "json", "a.b": "dot", "x": "x"})
    assert expression.evaluate(scope) == expected


def test_names_that_are_not_functions_stay_variables() -> None:
    assert Expression("math.nope(1)").references == {"math"}
    assert Expression("strings.size()").references == {"strings"}
    assert Expression("optional.of(x)").references == {"x"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ ''' it's ''' }}", " it's "),
        ('{{ """ }} """ }}!', " }} !"),
        ("{{ r'\\' + '}}' }}", "\\}}"),
        ("{{ 'a\\'}}' }}", "a'}}"),
        ("a {{ {'k': {'j': '}}'}}.k.j }} b", "a }} b"),
        ("{{ m.`}}` }}", "braces"),
        ("{{ b'}}' == b'\\x7d}' }}", True),
    ],
)
def test_templates_skip_cel_string_literals(template: str, expected: Any) -> None:
    assert compile_template(template).resolve(_scope(m={"}}": "braces"})) == expected


def test_an_unclosed_template_is_still_reported() -> None:
    with pytest.raises(ExpressionError, match="unclosed template"):
        split_template("{{ 'a' ")
    with pytest.raises(ExpressionError, match="unclosed template"):
        split_template("{{ ''' }} ")


def test_native_defaults_match_the_limits_model() -> None:
    limits = Limits()
    source = "+".join(["1"] * (limits.max_expression_depth + 5))
    with pytest.raises(LimitExceededError, match="max_expression_depth"):
        _native.Expression(source)


# through the command line ---------------------------------------------------------------------


def _workflow(tmp_path: Path, name: str, value: str, **node: Any) -> Path:
    document = {
        "version": 1,
        "variables": {"x": 1},
        "nodes": [{"id": "n", "type": "core.transform", "with": {"value": value}, **node}],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    return path


def _polyhost(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "POLYHOST_DEBUG"}
    environ.update({"POLYHOST_HOME": str(tmp_path / "home"), "NO_COLOR": "1"})
    return subprocess.run(
        [*polyhost_command(), *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "value",
    ["{{ " + "+".join(["1"] * 10_000) + " }}", "{{ var" + ".x" * 20_000 + " }}"],
    ids=["plus", "member"],
)
def test_compile_reports_deep_templates(tmp_path: Path, value: str) -> None:
    done = _polyhost(tmp_path, "compile", "--json", str(_workflow(tmp_path, "deep", value)))
    assert done.returncode == 2, done.stderr
    found = json.loads(done.stdout)
    (diagnostic,) = found["diagnostics"]
    assert diagnostic["code"] == "limit_exceeded"
    assert diagnostic["node"] == "n"
    assert diagnostic["field"] == "with.value"
    assert "max_expression_depth" in diagnostic["message"]
    assert len(diagnostic["message"]) < 400


def test_compile_accepts_extension_namespaces(tmp_path: Path) -> None:
    value = (
        "{{ [optional.of(1).value(), base64.encode(b'a'), lists.range(2), strings.quote('q'),"
        " type(timestamp('2024-01-01T00:00:00Z')) == google.protobuf.Timestamp,"
        " {'content-type': 1}.`content-type`, ''' it's '''] }}"
    )
    done = _polyhost(tmp_path, "compile", "--json", str(_workflow(tmp_path, "ok", value)))
    assert done.returncode == 0, done.stdout + done.stderr
