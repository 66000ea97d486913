"""What a node handler sees of its run: the ``ctx`` argument of every runtime."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["NodeContext", "NodeTools", "ToolSpec"]

LogSink = Callable[[str, str, dict[str, Any]], None]
ChunkSink = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A node type offered to a node as a tool (``llm.chat``'s ``tools``).

    ``name`` is what the caller uses (a model's function name: letters, digits, ``_`` and ``-``);
    ``parameters`` is the JSON Schema of the arguments it gives: the node type's input schema
    without the parameters the workflow fixed.
    """

    name: str
    node_type: str
    description: str
    parameters: Mapping[str, Any]


class NodeTools(Protocol):
    """The node types a node may run as tools, each through the runtime router with the node
    contract (schema check, timeout, typed errors)."""

    @property
    def specs(self) -> Sequence[ToolSpec]:
        """The tools, in the order the workflow lists them."""
        ...

    async def call(
        self, name: str, arguments: dict[str, Any], call_id: str, timeout: float | None = None
    ) -> Any:
        """Run tool ``name`` with ``arguments`` within ``timeout`` seconds (the host's default
        when None); its output, or a typed ``NodeError``."""
        ...


class _CancelFlag:
    """Shared by a context and its copies (a worker thread's view of the same attempt)."""

    __slots__ = ("set",)

    def __init__(self) -> None:
        self.set = False


@dataclass(slots=True)
class NodeContext:
    """Per-attempt context handed to a node handler.

    ``idempotency_key`` is the same for every attempt of a node in a run (and after the run is
    resumed elsewhere), so side-effecting handlers can deduplicate.
    """

    run_id: str
    workflow_id: str
    node_id: str
    node_type: str
    attempt: int
    idempotency_key: str
    durable: bool = False  # the run is kept in a store, so it can pause and resume
    resume_input: dict[str, Any] | None = None  # on resume of a node that asked for a pause
    deadline: float | None = None  # time.monotonic() at which the attempt times out, if it does
    # The environment variables the host lets workflows read (their values are secrets).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    tools: NodeTools | None = field(default=None, repr=False)  # when the node type takes tools
    _log_sink: LogSink | None = field(default=None, repr=False)
    _chunk_sink: ChunkSink | None = field(default=None, repr=False)
    _flag: _CancelFlag = field(default_factory=_CancelFlag, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once the attempt was cancelled or timed out; long sync work should check it."""
        return self._flag.set

    def cancel(self) -> None:
        """Mark the attempt cancelled (called by the engine)."""
        self._flag.set = True

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """Record a log line as a ``log`` event of this node."""
        if self._log_sink is not None:
            self._log_sink(level, str(message), fields)

    def chunk(self, data: Any) -> None:
        """Stream a partial result as a ``node.chunk`` event (JSON-serialisable data)."""
        if self._chunk_sink is not None:
            self._chunk_sink(data)
