"""CEL expressions: parsing, references, evaluation, conversions and scopes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyhost import _native
from polyhost._errors import LimitExceededError


def evaluate(source: str, **variables: Any) -> Any:
    scope = _native.Scope()
    for name, value in variables.items():
        scope.set(name, value)
    return _native.Expression(source).evaluate(scope)


@pytest.mark.parametrize("source", ["a +", "(1", "a.b.", "1 + + ", "'open", ""])
def test_syntax_errors(source: str) -> None:
    with pytest.raises(_native.ExpressionSyntaxError, match=r"^Syntax error"):
        _native.Expression(source)


def test_syntax_error_gives_the_position() -> None:
    with pytest.raises(_native.ExpressionSyntaxError, match=r"^Syntax error at 1:\d+: "):
        _native.Expression("a + (b *")


def test_source_is_kept() -> None:
    expr = _native.Expression("input.x > 1")
    assert expr.source == "input.x > 1"
    assert repr(expr) == 'Expression("input.x > 1")'


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("totals.rows.exists(r, r.sum > input.threshold)", ["input", "totals"]),
        ("a.all(x, x > 0) && b.exists_one(y, y == c)", ["a", "b", "c"]),
        ("a.map(x, x.filter(y, y > x && y < lim))", ["a", "lim"]),
        ("a.map(x, x > 1, x * k)", ["a", "k"]),
        ("x.exists(x, x > 0)", ["x"]),
        ("[1, 2].map(i, i * factor).size() > 0", ["factor"]),
        ("has(node.output) ? node.output : var.fallback", ["node", "var"]),
        ("{'k': v, w: 1}", ["v", "w"]),
        ("size(a) + int(b) + 1", ["a", "b"]),
        ("1 + 2", []),
        ("a.b.c + a.d", ["a"]),
    ],
)
def test_references_are_free_top_level_names(source: str, expected: list[str]) -> None:
    assert _native.Expression(source).references() == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("null", None),
        ("true && !false", True),
        ("7 / 2", 3),
        ("7u + 1u", 8),
        ("3.5 * 2.0", 7.0),
        ("'ab' + 'c'", "abc"),
        ("b'\\x00ab'", b"\x00ab"),
        ("[1, 'a', [true]]", [1, "a", [True]]),
        ("{'a': 1, 2: 'two', true: null}", {"a": 1, 2: "two", True: None}),
        ("timestamp('2024-01-02T03:04:05Z')", "2024-01-02T03:04:05+00:00"),
        ("duration('1m30.5s')", 90.5),
        ("type(1) == int", True),
        ("'TacoCat'.lowerAscii()", "tacocat"),
        ("math.greatest(1, 5, 3)", 5),
        ("[1, 2, 3].filter(x, x > 1).map(x, x * 10)", [20, 30]),
    ],
)
def test_evaluation_results_are_python_values(source: str, expected: object) -> None:
    result = evaluate(source)
    assert result == expected
    assert type(result) is type(expected)


def test_conditions_read_the_scope() -> None:
    rows = [{"sum": float(i), "region": f"r{i}"} for i in range(1000)]
    scope = _native.Scope()
    scope.set("input", {"threshold": 12})
    scope.set("totals", {"rows": rows, "count": 3})
    assert _native.Expression("input.threshold > 10 && totals.count < 5").evaluate(scope) is True
    assert _native.Expression("totals.rows[3].sum").evaluate(scope) == 3.0
    assert _native.Expression("totals.rows.exists(r, r.sum > input.threshold)").evaluate(scope)
    assert _native.Expression("size(totals.rows)").evaluate(scope) == 1000


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x + 1", "undeclared reference to 'x'"),
        ("input.nope", "no such key: nope"),
        ("1 / 0", "division by zero"),
        ("1 % 0", "modulus by zero"),
        ("1 + 'a'", "operator 'add' does not apply to int and string"),
        ("size(1)", "no matching overload for 'size'"),
        ("[1][5]", "index out of bounds"),
        ("9223372036854775807 + 1", "overflow"),
    ],
)
def test_evaluation_errors_name_the_problem(source: str, message: str) -> None:
    with pytest.raises(_native.ExpressionEvalError, match=message):
        evaluate(source, input={"a": 1})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text() | st.integers(-(2**63), 2**63 - 1), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_values_round_trip(value: object) -> None:
    assert evaluate("v", v=value) == value


def test_tuples_become_lists_and_bools_stay_bools() -> None:
    assert evaluate("v", v=(1, (2, 3))) == [1, [2, 3]]
    result = evaluate("v", v=[True, 1])
    assert [type(x) for x in result] == [bool, int]
    assert math.isinf(evaluate("v", v=float("inf")))


def test_large_ints_become_uints_and_larger_ones_fail() -> None:
    assert evaluate("v + 1u", v=2**63) == 2**63 + 1
    scope = _native.Scope()
    for too_big in (2**64, -(2**63) - 1):
        with pytest.raises(_native.ExpressionEvalError, match="out of range"):
            scope.set("v", too_big)


@pytest.mark.parametrize("value", [object(), {1.5: "x"}, {"a": {1, 2}}, 1j])
def test_unsupported_values_are_type_errors(value: object) -> None:
    scope = _native.Scope()
    with pytest.raises(TypeError, match=r"float|set|complex|object"):
        scope.set("v", value)
    assert "v" not in scope


def test_self_containing_values_are_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(LimitExceededError, match="max_value_depth"):
        _native.Scope().set("v", loop)


def test_scope_names_contains_and_remove() -> None:
    scope = _native.Scope()
    scope.set("b", 1)
    scope.set("a", 2)
    assert scope.names() == ["a", "b"]
    assert "a" in scope
    assert "c" not in scope
    scope.remove("a")
    scope.remove("missing")
    assert scope.names() == ["b"]
    with pytest.raises(_native.ExpressionEvalError, match="undeclared reference to 'a'"):
        _native.Expression("a").evaluate(scope)


def test_child_scopes_are_isolated() -> None:
    parent = _native.Scope()
    parent.set("shared", {"x": 1})
    child = parent.child()
    assert _native.Expression("shared.x").evaluate(child) == 1
    child.set("loop", {"index": 0})
    child.set("shared", {"x": 2})
    parent.set("later", True)
    assert parent.names() == ["later", "shared"]
    assert child.names() == ["loop", "shared"]
    assert _native.Expression("shared.x").evaluate(parent) == 1
    assert _native.Expression("shared.x").evaluate(child) == 2
    grandchild = child.child()
    child.remove("loop")
    assert "loop" in grandchild


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("var.currency + ':' + string(loop.index)", "EUR:2"),
        ("[1, 2].map(for, for * loop.index)", [2, 4]),
        ("loop.item.var", "nested"),
        ("'var' + \"loop\"", "varloop"),
    ],
)
def test_reserved_words_are_variable_names(source: str, expected: object) -> None:
    assert evaluate(
        source, var={"currency": "EUR"}, loop={"index": 2, "item": {"var": "nested"}}
    ) == (expected)


def test_reserved_words_in_references_and_errors() -> None:
    assert _native.Expression("var.a + loop.b + [1].map(if, if)[0]").references() == [
        "loop",
        "var",
    ]
    with pytest.raises(_native.ExpressionSyntaxError, match=r"^Syntax error at 1:5: .*var"):
        _native.Expression("var var")
    with pytest.raises(_native.ExpressionEvalError, match="undeclared reference to 'loop'"):
        evaluate("loop.index")


def test_one_expression_many_scopes() -> None:
    expr = _native.Expression("loop.item * 2")
    base = _native.Scope()
    results = []
    for i in range(5):
        scope = base.child()
        scope.set("loop", {"item": i})
        results.append(expr.evaluate(scope))
    assert results == [0, 2, 4, 6, 8]
