"""The interface between the engine and a run store (SQLite by default, Postgres later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._events import Event
from .._result import NodeResult, RunResult, RunStatus

__all__ = ["RunRecord", "RunStore", "RunSummary"]


@dataclass(slots=True)
class RunRecord:
    """What a store needs to know when a run starts (and to re-run it later)."""

    run_id: str
    workflow_id: str
    status: RunStatus
    inputs: dict[str, Any]
    document: dict[str, Any]
    source: str | None = None
    manifest: str | None = None
    started_at: float = 0.0
    parent_run_id: str | None = None


@dataclass(slots=True)
class RunSummary:
    """One row of the history."""

    run_id: str
    workflow_id: str
    status: RunStatus
    started_at: float
    finished_at: float | None
    duration_ms: float | None
    error: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class RunStore(Protocol):
    """Where runs, node results and events are kept.

    The ``record_*`` methods are called on the event loop and must not block: a store queues
    them and writes in the background, in order. ``flush`` waits until all queued writes are
    committed. The read methods are synchronous and may block; async callers run them in a
    worker thread.
    """

    def record_run_started(self, record: RunRecord) -> None:
        """A run began (or resumed)."""
        ...

    def record_event(self, event: Event) -> None:
        """An event of a run."""
        ...

    def record_node(self, run_id: str, node_id: str, result: NodeResult) -> None:
        """A node reached a new status (the latest record per node wins)."""
        ...

    def record_run_finished(self, result: RunResult) -> None:
        """A run ended (completed, failed, cancelled) or paused; the full result object."""
        ...

    async def flush(self) -> None:
        """Wait until every queued write is committed."""
        ...

    def list_runs(
        self, *, limit: int = 50, status: RunStatus | None = None, workflow_id: str | None = None
    ) -> list[RunSummary]:
        """The most recent runs first."""
        ...

    def get_result(self, run_id: str) -> RunResult:
        """A run's result object (for a run still going: what is known so far).

        Raises ``RunNotFoundError``.
        """
        ...

    def get_record(self, run_id: str) -> RunRecord:
        """What the run started with. Raises ``RunNotFoundError``."""
        ...

    def events(self, run_id: str, *, after_seq: int = 0) -> list[Event]:
        """A run's events in sequence order."""
        ...

    def close(self) -> None:
        """Flush what is queued and close; idempotent."""
        ...
