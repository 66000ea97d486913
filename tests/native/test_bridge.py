"""The bridge to the extension: what crosses it is Python-side, and its errors are polyhost's."""

from __future__ import annotations

import pytest

from polyhost import ExpressionError, NodeError, PolyhostError
from polyhost._errors import ExpressionLimitError, PatternError, PlanError
from polyhost.plan._bridge import (
    CancelToken,
    Pattern,
    Plan,
    Program,
    Scope,
    call_native_node,
    is_native_failure,
    native_node_error,
)


def test_plan_errors_are_polyhost_errors() -> None:
    with pytest.raises(PlanError, match="out of range") as caught:
        Plan(2, [(0, 5, "out")])
    assert isinstance(caught.value, PolyhostError) and not isinstance(caught.value, ValueError)
    assert caught.value.code == "plan_error"
    state = Plan(2, [(0, 1, "out")]).new_run()
    assert state.start() == [0]
    with pytest.raises(PlanError):
        state.complete(1, ["out"])  # not ready
    with pytest.raises(PlanError, match="snapshot"):
        Plan(3, []).restore({"nodes": []})


def test_a_run_of_a_plan_goes_through_the_bridge() -> None:
    plan = Plan(3, [(0, 1, "out"), (0, 2, "other")])
    state = plan.new_run()
    assert state.start() == [0]
    state.mark_running(0)
    ready, skipped = state.complete(0, ["out"])
    assert (ready, skipped) == ([1], [2])
    assert plan.restore(state.snapshot()).state(1) == "ready"


def test_expression_errors_are_polyhost_errors() -> None:
    with pytest.raises(ExpressionError, match="Syntax error"):
        Program("1 +", 65536, 500, 1_000_000, 64 << 20)
    scope = Scope()
    scope.set("a", {"x": 1})
    program = Program("a.y", 65536, 500, 1_000_000, 64 << 20)
    with pytest.raises(ExpressionError, match=r"'a\.y'"):
        program.evaluate(scope)
    with pytest.raises(ExpressionLimitError):
        Program("x" * 100, 10, 500, 1_000_000, 64 << 20)
    with pytest.raises(ExpressionError):
        scope.set("big", 2**64)
    child = scope.child()
    child.set("b", 2)
    assert "b" in child and "b" not in scope
    assert Program("a.x + b", 65536, 500, 1_000_000, 64 << 20).evaluate(child) == 3


def test_a_pattern_the_engine_cannot_run_is_a_polyhost_error() -> None:
    with pytest.raises(PatternError) as caught:
        Pattern(r"(a)\1", 64 * 1024)
    assert isinstance(caught.value, PolyhostError) and caught.value.code == "invalid_pattern"
    assert Pattern("^a+$", 64 * 1024).search("aaa")


def test_a_native_node_failure_becomes_a_node_error_naming_the_node() -> None:
    call = call_native_node("csv.read", {"path": "relative.csv"}, CancelToken(), "n1", {})
    with pytest.raises(Exception) as caught:
        call()
    assert is_native_failure(caught.value)
    error = native_node_error(caught.value, "n1")
    assert isinstance(error, NodeError)
    assert (error.node, error.code, error.retryable) == ("n1", "invalid_path", False)
