"""The native core of polyhost: workflow plans, the run scheduler, CEL expressions and the
native nodes (`native_nodes()`, `call_native()`).

Private: the rest of the package reaches it through a thin layer of Python modules, which
translate its exceptions into polyhost's public errors.
"""

from collections.abc import Iterable
from typing import Any, final

__all__ = [
    "CancelToken",
    "Expression",
    "ExpressionEvalError",
    "ExpressionSyntaxError",
    "NativeNodeError",
    "Pattern",
    "PatternError",
    "Plan",
    "PlanError",
    "RunState",
    "Scope",
    "__version__",
    "call_native",
    "check_native",
    "native_limit_defaults",
    "native_nodes",
]

__version__: str
"""The version of the native crate."""

class PlanError(ValueError):
    """A plan or run state was used wrongly.

    Raised for a node index out of range, `topo_order()` or `new_run()` on a cyclic plan, a
    scheduler transition the rules do not allow (completing a node that is not ready or
    running, starting twice), and a snapshot that does not match its plan.
    """

class ExpressionSyntaxError(ValueError):
    """A CEL expression could not be parsed.

    The message has one `Syntax error at LINE:COLUMN: ...` part per error (columns count
    from 1), joined with `; `.
    """

class ExpressionEvalError(ValueError):
    """A CEL expression failed while evaluating, or a value could not be converted.

    The message names the problem: `no such key: foo`, `undeclared reference to 'x'`,
    `found no matching overload for '_+_' applied to '(int, string)'`, `division by zero`,
    and so on.
    """

@final
class Plan:
    """An immutable directed graph of nodes `0..node_count - 1` and port-labelled edges.

    Edges are `(source, target, port)`. Duplicate edges are kept as separate edges. Cycles
    are allowed in the graph itself: `find_cycle()` reports them, and `topo_order()` and
    `new_run()` refuse them.
    """

    def __new__(cls, node_count: int, edges: Iterable[tuple[int, int, str]]) -> Plan:
        """Builds the plan from any iterable of edges (a list of tuples is fastest).

        Raises:
            PlanError: a negative `node_count` or a node index out of range.
            TypeError: an edge that is not a `(int, int, str)` tuple.
        """

    @property
    def node_count(self) -> int:
        """The number of nodes."""

    @property
    def edge_count(self) -> int:
        """The number of edges, duplicates included."""

    def find_cycle(self) -> list[int] | None:
        """One cycle, or None when the plan is acyclic.

        The cycle is listed in edge order (`[a, b, c]` means the edges `a -> b`, `b -> c`
        and `c -> a`) and starts at its smallest index; a self loop is `[a]`. The cycle is
        the first one a depth-first search meets, visiting roots in ascending order and
        edges in insertion order, so the answer is deterministic.
        """

    def topo_order(self) -> list[int]:
        """All nodes in topological order; among the nodes available at each step, the
        smallest index comes first (Kahn's algorithm).

        Raises:
            PlanError: the plan has a cycle (the message shows one).
        """

    def ancestors(self, node: int) -> list[int]:
        """Sorted indices of every node with a path to `node`, `node` itself excluded.

        Raises:
            PlanError: `node` is out of range.
        """

    def successors(self, node: int) -> list[tuple[int, str]]:
        """`(target, port)` for each edge leaving `node`, in edge insertion order.

        Raises:
            PlanError: `node` is out of range.
        """

    def predecessors(self, node: int) -> list[tuple[int, str]]:
        """`(source, port)` for each edge entering `node`, in edge insertion order.

        Raises:
            PlanError: `node` is out of range.
        """

    def new_run(self) -> RunState:
        """A fresh run of this plan, every node pending; call `start()` on it.

        Raises:
            PlanError: the plan has a cycle.
        """

@final
class RunState:
    """The scheduler state of one run of a plan, with dead-path elimination.

    An edge is settled once its source completed or was skipped, and taken when its source
    completed on the edge's port. A node becomes ready when all its incoming edges are
    settled and at least one was taken; when all are settled and none was taken it is
    skipped, and its own outgoing edges settle as not taken, which propagates. Nodes with
    no incoming edges are ready at start, and are never skipped by propagation.

    Node states: `"pending"`, `"ready"`, `"running"`, `"completed"`, `"skipped"`.
    Every `(newly_ready, newly_skipped)` pair returned is two lists in ascending order;
    `newly_skipped` includes the nodes skipped transitively.
    """

    def start(self) -> list[int]:
        """Marks the nodes without incoming edges ready and returns them, ascending.

        Raises:
            PlanError: the run was already started.
        """

    def complete(self, node: int, ports: Iterable[str]) -> tuple[list[int], list[int]]:
        """`node` finished: each outgoing edge whose port is in `ports` is taken, every
        other outgoing edge settles as not taken. `ports=[]` takes nothing. A port that no
        edge uses is ignored.

        Returns:
            `(newly_ready, newly_skipped)`, each ascending.

        Raises:
            PlanError: `node` is out of range or not ready or running.
            TypeError: `ports` is a `str` rather than a sequence of them.
        """

    def complete_many(self, nodes: Iterable[int], port: str) -> tuple[list[int], list[int]]:
        """Every node of `nodes` finished on the single port `port`, as by `complete()`.

        All or nothing: if one node is not ready or running, or is listed twice, nothing
        changes.

        Returns:
            `(newly_ready, newly_skipped)` over all the nodes, each ascending.

        Raises:
            PlanError: a node is out of range, not ready or running, or listed twice.
        """

    def skip(self, node: int) -> tuple[list[int], list[int]]:
        """A ready (or running) node will not run, e.g. its `when` was false: it is
        skipped and all its outgoing edges settle as not taken.

        Returns:
            `(newly_ready, newly_skipped)`, each ascending, without `node` itself.

        Raises:
            PlanError: `node` is out of range or not ready or running.
        """

    def mark_running(self, node: int) -> None:
        """Bookkeeping: a ready node started running. Optional: `complete()` accepts a
        ready node as well as a running one.

        Raises:
            PlanError: `node` is out of range or not ready.
        """

    def state(self, node: int) -> str:
        """The state of `node`: pending, ready, running, completed or skipped.

        Raises:
            PlanError: `node` is out of range.
        """

    def is_finished(self) -> bool:
        """No node is pending, ready or running."""

    def counts(self) -> dict[str, int]:
        """The number of nodes in each state, all five states present."""

    def snapshot(self) -> dict[str, Any]:
        """The full scheduler state as JSON-compatible data, for `restore()`.

        Keys: `version` (1), `node_count`, `edge_count`, `started` (bool), `states` (one
        state name per node) and `taken_edges` (ascending indices, in the plan's edge
        order, of the edges that were taken).
        """

    @staticmethod
    def restore(plan: Plan, snapshot: dict[str, Any]) -> RunState:
        """Rebuilds a run from `snapshot()` output taken on the same plan.

        Raises:
            PlanError: the snapshot is malformed, of another plan, or not a state a run
                can reach.
        """

@final
class Expression:
    """A CEL expression, parsed once and evaluated many times.

    The environment is CEL's standard library and macros plus the strings, math, lists
    and encoders extensions.
    """

    def __new__(
        cls,
        source: str,
        max_bytes: int = ...,
        max_depth: int = ...,
        max_steps: int = ...,
        max_memory: int = ...,
    ) -> Expression:
        """Parses `source`, after checking it is at most `max_bytes` long and its syntax
        tree at most `max_depth` deep (a linear scan, so nothing recursive sees a deeper
        one). Each evaluation may take `max_steps` comprehension steps and build
        `max_memory` bytes of values (defaults: those of `polyhost.Limits`, 64 KiB, 500,
        1,000,000 and 64 MiB). Quoted fields (``m.`content-type` ``) are read as
        indexes.

        Raises:
            ExpressionSyntaxError: `source` is not valid CEL.
            polyhost.LimitExceededError: `max_expression_bytes` or `max_expression_depth`.
        """

    @property
    def source(self) -> str:
        """The source text."""

    def references(self) -> list[str]:
        """Sorted, unique top-level names the expression reads from its scope.

        Names bound by comprehension macros (`all`, `exists`, `exists_one`, `map`,
        `filter`) are not references: `totals.rows.exists(r, r.sum > input.threshold)`
        gives `["input", "totals"]`.
        """

    def evaluate(self, scope: Scope) -> Any:
        """Evaluates against `scope` and converts the result to Python.

        null gives None; bool, int (CEL int and uint), float, str, bytes, list and dict
        (keys str, int or bool) map to themselves; a timestamp gives its RFC 3339 text, a
        duration its length in seconds as a float, an optional its value or None, a type
        its name.

        Raises:
            ExpressionEvalError: evaluation failed (a missing key, a name not in the
                scope, no matching overload, division by zero, ...), or the result has no
                Python counterpart.
            polyhost.LimitExceededError: `max_expression_steps` or
                `max_expression_memory`; an expression with comprehensions or growing
                functions is evaluated with the GIL released.
        """

@final
class Scope:
    """Named variables for evaluating expressions.

    Values are converted to CEL once, by `set()`: dict (keys str, int or bool) to map,
    list and tuple to list, str, int (64-bit signed, or unsigned above that), float, bool,
    bytes, and None to null.
    """

    def __new__(cls, max_value_depth: int = 128) -> Scope:
        """An empty scope; values may nest lists and maps `max_value_depth` deep (its
        children keep the limit)."""

    def set(self, name: str, value: Any) -> None:
        """Binds `name` to `value`, converted now; replaces any earlier binding.

        Raises:
            TypeError: `value` holds a type CEL has no value for (the message names it).
            ExpressionEvalError: an int beyond 64 bits.
            polyhost.LimitExceededError: nesting deeper than `max_value_depth`.
        """

    def remove(self, name: str) -> None:
        """Unbinds `name`; nothing happens if it is not bound."""

    def __contains__(self, name: str, /) -> bool:
        """Whether `name` is bound."""

    def names(self) -> list[str]:
        """The bound names, sorted."""

    def child(self) -> Scope:
        """A new scope holding this scope's variables as they are now.

        Cheap: values are shared, not copied. Later `set()` and `remove()` calls on either
        scope do not affect the other.
        """

class NativeNodeError(Exception):
    """A native node failed.

    `args` is `(code, message, field)`: a stable snake_case code, a message for people
    (naming the file, line and column where there are some), and the parameter at fault or
    None. Codes: `invalid_parameters`, `invalid_path` (a relative path, or not a regular
    file), `io_error`, `limit_exceeded` (past a limit: `native_limit_defaults()`),
    `invalid_output` (inline rows past the output limit),
    `csv_error` (a ragged row, bad UTF-8, an unterminated quote, a value not of its column's
    type), `too_many_rows` (inline output past `max_rows`), `invalid_input`, `cancelled`,
    `panic` (the node panicked; the process is unharmed) and `unknown_native_node`.
    """

@final
class CancelToken:
    """A flag shared with running native nodes; `cancel()` asks them to stop.

    Nodes look at it between chunks of work (every 64 KiB or 10,000 rows) and then fail
    with the code `cancelled`. Safe to use from any thread.
    """

    def __new__(cls) -> CancelToken:
        """A token not cancelled yet."""

    def cancel(self) -> None:
        """Asks every node run with this token to stop; calling it again does nothing."""

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called."""

def native_nodes() -> list[dict[str, Any]]:
    """Every registered native node, in registration order.

    Each entry has `name` (e.g. `"csv.query"`), `description`, and `input_schema` and
    `output_schema`: JSON Schemas as dicts; input schemas are objects with
    `additionalProperties: false`.
    """

def call_native(
    name: str,
    params: dict[str, Any],
    token: CancelToken,
    node_id: str = "",
    limits: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Runs the native node `name` on `params` and returns its output.

    `params` must be JSON-like: dicts with str keys, lists, tuples, str, int (64-bit),
    finite float, bool and None. The node runs without the GIL, so other Python threads
    go on meanwhile; `token` lets another thread cancel it. `node_id` only names the node
    in messages. Paths must be absolute; callers check them against their allowed roots.
    `limits` sets limits by name (see `native_limit_defaults()`); the rest keep their
    defaults.

    Raises:
        NativeNodeError: the node failed (see its codes), `params` could not be converted
            (`invalid_parameters`), no node is called `name` (`unknown_native_node`), or
            the node panicked (`panic`, with the panic's message; nothing is printed).
        ValueError: `limits` names an unknown limit.
    """

def check_native(
    name: str, params: dict[str, Any], limits: dict[str, int] | None = None
) -> list[tuple[str, str, str | None]]:
    """Problems in the parameters of a `name` node known before it runs.

    `params` holds only the parameters known when the workflow compiles (constants). Each
    problem is `(code, message, field)`, as a failed run would report it; none for an
    unknown node.
    """

def native_limit_defaults() -> dict[str, int]:
    """The default of every limit native nodes enforce, by name (the `Limits` field that
    sets it, or `max_output_bytes` for the host's output limit)."""

class PatternError(ValueError):
    """An ECMA-262 pattern that cannot be used.

    Raised when the pattern is not valid ECMA-262, uses a feature a linear-time engine
    cannot run (backreferences, lookahead, lookbehind), or compiles to a program larger than
    its size limit. The message names the problem and its position (characters from 0).
    """

@final
class Pattern:
    """An ECMA-262 regular expression (JSON Schema's `pattern`), run in linear time.

    ECMA-262 meaning is kept where the engine's own syntax differs: `\\d`, `\\w` and `\\b` are
    ASCII, `\\s` is ECMA's white space, `.` stops at line terminators, `$` only matches at
    the end, and `\\p{Letter}` and the other Unicode properties work.
    """

    def __new__(cls, source: str, size_limit: int = ...) -> Pattern:
        """Compiles `source`; the program and each match cache stay within `size_limit`
        bytes (1 MiB by default).

        Raises:
            PatternError: `source` cannot be used (see the class).
        """

    @property
    def source(self) -> str:
        """The ECMA-262 source."""

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in `text` (it is not anchored).

        Lone surrogates in `text` are matched as U+FFFD.
        """
