"""The one door to the Rust extension: no other module of the host imports ``polyhost._native``.

What crosses it comes out as Python-side types (:class:`Plan`, :class:`RunState`,
:class:`Scope`, :class:`Program`, :class:`Pattern`) whose failures are errors of the public
tree (``polyhost._errors``): the extension's ``PlanError`` becomes :class:`PlanError`, its
expression errors :class:`ExpressionError` (or :class:`ExpressionLimitError` past a limit), its
regex ``PatternError`` :class:`PatternError`, and a native node's ``NativeNodeError`` a
:class:`NodeError` naming the node. Each wrapper is a thin slot class: one Python call more per
operation, far below what a node costs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from .. import _native
from .._errors import (
    ExpressionError,
    ExpressionLimitError,
    LimitExceededError,
    NodeError,
    PatternError,
    PlanError,
)

__all__ = [
    "CancelToken",
    "Pattern",
    "Plan",
    "Program",
    "RunState",
    "Scope",
    "call_native_node",
    "check_native_node",
    "is_native_failure",
    "native_limit_names",
    "native_node_error",
    "native_node_specs",
]


def _plan_error(exc: _native.PlanError) -> NoReturn:
    raise PlanError(str(exc)) from None


# plan and scheduler --------------------------------------------------------------------------


class RunState:
    """The scheduler state of one run of a :class:`Plan` (see the extension's ``RunState``)."""

    __slots__ = ("_state",)

    def __init__(self, state: _native.RunState) -> None:
        self._state = state

    def start(self) -> list[int]:
        """The nodes ready at the start (no incoming edges)."""
        try:
            return self._state.start()
        except _native.PlanError as exc:
            _plan_error(exc)

    def complete(self, node: int, ports: Iterable[str]) -> tuple[list[int], list[int]]:
        """``node`` settled on ``ports``: the nodes now ready and those now skipped."""
        try:
            return self._state.complete(node, ports)
        except _native.PlanError as exc:
            _plan_error(exc)

    def complete_many(self, nodes: Iterable[int], port: str) -> tuple[list[int], list[int]]:
        """Several nodes settled on ``port``: the nodes now ready and those now skipped."""
        try:
            return self._state.complete_many(nodes, port)
        except _native.PlanError as exc:
            _plan_error(exc)

    def skip(self, node: int) -> tuple[list[int], list[int]]:
        """``node`` is skipped: the nodes now ready and those skipped with it."""
        try:
            return self._state.skip(node)
        except _native.PlanError as exc:
            _plan_error(exc)

    def mark_running(self, node: int) -> None:
        """``node`` (ready) is running now."""
        try:
            self._state.mark_running(node)
        except _native.PlanError as exc:
            _plan_error(exc)

    def state(self, node: int) -> str:
        """``node``'s state: pending, ready, running, completed or skipped."""
        try:
            return self._state.state(node)
        except _native.PlanError as exc:
            _plan_error(exc)

    def is_finished(self) -> bool:
        """Whether every node completed or was skipped."""
        return self._state.is_finished()

    def counts(self) -> dict[str, int]:
        """How many nodes are in each state."""
        return self._state.counts()

    def snapshot(self) -> dict[str, Any]:
        """The state as plain data, for :meth:`Plan.restore`."""
        return self._state.snapshot()


class Plan:
    """A workflow's DAG: adjacency, ports and order (built in the extension)."""

    __slots__ = ("_plan",)

    def __init__(self, node_count: int, edges: Iterable[tuple[int, int, str]]) -> None:
        try:
            self._plan = _native.Plan(node_count, edges)
        except _native.PlanError as exc:
            _plan_error(exc)

    @property
    def node_count(self) -> int:
        """How many nodes."""
        return self._plan.node_count

    @property
    def edge_count(self) -> int:
        """How many edges."""
        return self._plan.edge_count

    def find_cycle(self) -> list[int] | None:
        """The nodes of one cycle, in order, or None."""
        return self._plan.find_cycle()

    def topo_order(self) -> list[int]:
        """Every node in a topological order; ``PlanError`` on a cycle."""
        try:
            return self._plan.topo_order()
        except _native.PlanError as exc:
            _plan_error(exc)

    def ancestors(self, node: int) -> list[int]:
        """The nodes ``node`` is reachable from."""
        try:
            return self._plan.ancestors(node)
        except _native.PlanError as exc:
            _plan_error(exc)

    def successors(self, node: int) -> list[tuple[int, str]]:
        """``(target, port)`` of each edge out of ``node``."""
        try:
            return self._plan.successors(node)
        except _native.PlanError as exc:
            _plan_error(exc)

    def predecessors(self, node: int) -> list[tuple[int, str]]:
        """``(source, port)`` of each edge into ``node``."""
        try:
            return self._plan.predecessors(node)
        except _native.PlanError as exc:
            _plan_error(exc)

    def new_run(self) -> RunState:
        """A fresh scheduler state for one run."""
        return RunState(self._plan.new_run())

    def restore(self, snapshot: dict[str, Any]) -> RunState:
        """The scheduler state a :meth:`RunState.snapshot` of this plan holds."""
        try:
            return RunState(_native.RunState.restore(self._plan, snapshot))
        except _native.PlanError as exc:
            _plan_error(exc)


# expressions ---------------------------------------------------------------------------------


class Scope:
    """Named variables expressions read (values converted to CEL once, by :meth:`set`)."""

    __slots__ = ("_scope",)

    def __init__(self, max_value_depth: int = 128, *, _scope: _native.Scope | None = None) -> None:
        self._scope = _native.Scope(max_value_depth) if _scope is None else _scope

    def set(self, name: str, value: Any) -> None:
        """Bind ``name`` to ``value``; ``ExpressionError`` for an int beyond 64 bits,
        ``TypeError`` for a type CEL has no value for, ``LimitExceededError`` past the depth."""
        try:
            self._scope.set(name, value)
        except _native.ExpressionEvalError as exc:
            raise ExpressionError(str(exc)) from None

    def remove(self, name: str) -> None:
        """Unbind ``name`` (nothing happens if it is not bound)."""
        self._scope.remove(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._scope

    def names(self) -> list[str]:
        """The bound names, sorted."""
        return self._scope.names()

    def child(self) -> Scope:
        """A new scope holding these variables as they are now (values shared, not copied)."""
        return Scope(_scope=self._scope.child())


class Program:
    """A parsed CEL expression; :meth:`evaluate` runs it against a :class:`Scope`."""

    __slots__ = ("_program", "source")

    def __init__(
        self, source: str, max_bytes: int, max_depth: int, max_steps: int, max_memory: int
    ) -> None:
        try:
            self._program = _native.Expression(source, max_bytes, max_depth, max_steps, max_memory)
        except _native.ExpressionSyntaxError as exc:
            raise ExpressionError(str(exc), source=source) from None
        except LimitExceededError as exc:
            raise ExpressionLimitError(exc, source) from None
        self.source = source

    def references(self) -> list[str]:
        """The top-level names the expression reads, sorted."""
        return self._program.references()

    def evaluate(self, scope: Scope) -> Any:
        """The value in ``scope``; ``ExpressionError`` (``ExpressionLimitError`` past a limit)
        when it cannot be had."""
        try:
            return self._program.evaluate(scope._scope)
        except _native.ExpressionEvalError as exc:
            raise ExpressionError(f"{self.source!r}: {exc}", source=self.source) from None
        except LimitExceededError as exc:
            raise ExpressionLimitError(exc, self.source) from None


# regular expressions -------------------------------------------------------------------------


class Pattern:
    """An ECMA-262 pattern compiled for the linear-time engine."""

    __slots__ = ("_pattern",)

    def __init__(self, source: str, size_limit: int) -> None:
        try:
            self._pattern = _native.Pattern(source, size_limit)
        except _native.PatternError as exc:
            raise PatternError(str(exc)) from None

    @property
    def source(self) -> str:
        """The pattern's text."""
        return self._pattern.source

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text``."""
        return self._pattern.search(text)


# native nodes --------------------------------------------------------------------------------

CancelToken = _native.CancelToken
# Failures a second attempt may not repeat (the disk, the network); the rest are final.
_RETRYABLE = frozenset({"io_error"})


def native_node_specs() -> list[dict[str, Any]]:
    """The extension's registered nodes: ``name``, ``description`` and both schemas."""
    return _native.native_nodes()


def native_limit_names() -> list[str]:
    """The names of the limits built-in native nodes take (``Limits`` fields and
    ``max_output_bytes``)."""
    return list(_native.native_limit_defaults())


def check_native_node(
    name: str, params: dict[str, Any], limits: dict[str, int]
) -> list[tuple[str, str, str | None]]:
    """Problems a built-in native node finds in constant ``params``; none when the values
    have no JSON counterpart (the schema check reports those)."""
    try:
        return _native.check_native(name, params, limits)
    except (_native.NativeNodeError, ValueError):
        return []


def call_native_node(
    name: str, params: dict[str, Any], token: Any, node_id: str, limits: dict[str, int]
) -> Callable[[], Any]:
    """A call of the built-in native node ``name``, to run on a worker thread (it releases
    the GIL); what it raises, :func:`native_node_error` makes a ``NodeError``."""
    return functools.partial(_native.call_native, name, params, token, node_id, limits)


def native_node_error(exc: BaseException, node_id: str) -> NodeError:
    """The ``NodeError`` for a native node's failure (its code, message and field kept)."""
    if isinstance(exc, _native.NativeNodeError):
        code, message, field = [*exc.args, None, None, None][:3]
        return NodeError(
            str(message),
            node=node_id,
            code=str(code),
            field=field,
            retryable=code in _RETRYABLE,
        )
    return NodeError(str(exc), node=node_id, code="native_error", retryable=False)


def is_native_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is how a native node (built-in or out-of-tree) reports a failure."""
    return isinstance(exc, (_native.NativeNodeError, ValueError))
