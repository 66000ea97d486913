"""What the host hands out about runs, each in the shape of the JSON the CLI prints.

The one place these objects are built: ``polyhost run --json`` and ``runs show --json`` print
:meth:`RunResult.to_dict`, ``runs list --json`` prints :class:`RunOverview` rows, and a server
sends the same objects (spec section 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # _events imports this module's neighbours at load time
    from ._events import Event

__all__ = [
    "RUN_TRIGGERS",
    "CancelOutcome",
    "EventPage",
    "NodeResult",
    "NodeStatus",
    "RunDetails",
    "RunOverview",
    "RunPage",
    "RunResult",
    "RunStatus",
    "usage_of",
]


# What can start a run (a run summary's ``trigger``): a person (CLI or library), the HTTP API,
# a webhook, a schedule, a re-run or retry of another run, a parent's core.workflow node.
RUN_TRIGGERS: tuple[str, ...] = (
    "manual",
    "api",
    "webhook",
    "schedule",
    "rerun",
    "retry",
    "subworkflow",
)


class RunStatus(StrEnum):
    """Where a run stands."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class NodeStatus(StrEnum):
    """Where a node stands within a run."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    PAUSED = "paused"


@dataclass(slots=True)
class NodeResult:
    """One node's record in a run."""

    status: NodeStatus = NodeStatus.PENDING
    attempts: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: float | None = None
    duration_ms: float | None = None
    # What a resumed run needs to rebuild the scheduler: the ports the node settled on, the
    # order in which nodes settled, and why a node was skipped or how its failure was handled.
    ports: list[str] | None = None
    settled_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The node's entry in the result object."""
        return {
            "status": self.status.value,
            "attempts": self.attempts,
            "output": self.output,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


@dataclass(slots=True)
class RunResult:
    """What a run produced: status, outputs, the error that ended it and every node's record."""

    execution_id: str
    workflow_id: str
    status: RunStatus
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    nodes: dict[str, NodeResult] = field(default_factory=dict)
    started_at: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    pause: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the run completed."""
        return self.status is RunStatus.COMPLETED

    @property
    def usage(self) -> dict[str, Any] | None:
        """The model tokens the run's nodes used, summed (see :func:`usage_of`)."""
        return usage_of(self.nodes.values())

    def to_dict(self) -> dict[str, Any]:
        """The ``polyhost run --json`` object."""
        return {
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "status": self.status.value,
            "outputs": self.outputs,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "nodes": {node_id: node.to_dict() for node_id, node in self.nodes.items()},
            "pause": self.pause,
            "usage": self.usage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a result from :meth:`to_dict`'s shape (as the store keeps it)."""
        nodes = {
            node_id: NodeResult(
                status=NodeStatus(entry["status"]),
                attempts=entry.get("attempts", 0),
                output=entry.get("output"),
                error=entry.get("error"),
                duration_ms=entry.get("duration_ms"),
            )
            for node_id, entry in (data.get("nodes") or {}).items()
        }
        return cls(
            execution_id=data["execution_id"],
            workflow_id=data.get("workflow_id", ""),
            status=RunStatus(data["status"]),
            outputs=data.get("outputs"),
            error=data.get("error"),
            duration_ms=data.get("duration_ms", 0.0),
            nodes=nodes,
            pause=data.get("pause"),
        )


@dataclass(frozen=True, slots=True)
class RunOverview:
    """One row of the history: a ``runs list --json`` entry."""

    execution_id: str
    workflow_id: str
    status: RunStatus
    started_at: float
    finished_at: float | None
    duration_ms: float | None
    error: dict[str, Any] | None = None
    nodes: dict[str, int] = field(default_factory=dict)  # node count per node status
    workflow_version: int | None = None  # the deployed version it ran, if deployed
    trigger: str = "manual"  # what started it (one of RUN_TRIGGERS)

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON object: the HTTP API's run summary (``ended_at`` is
        ``finished_at``) and the node counts."""
        return {
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "status": self.status.value,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "ended_at": self.finished_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "nodes": dict(self.nodes),
        }


@dataclass(frozen=True, slots=True)
class RunPage:
    """A page of the history, newest first; ``next_cursor`` asks for the page after it
    (``None``: this is the last)."""

    runs: tuple[RunOverview, ...]
    next_cursor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The page as one JSON object (``runs list --json`` prints only its ``runs``)."""
        return {"runs": [run.to_dict() for run in self.runs], "next_cursor": self.next_cursor}


@dataclass(frozen=True, slots=True)
class RunDetails:
    """What a run started with: enough to start it again (same document, same inputs)."""

    execution_id: str
    workflow_id: str
    status: RunStatus
    inputs: dict[str, Any]
    document: dict[str, Any]
    source: str | None = None  # the workflow file it was read from
    manifests: tuple[str, ...] = ()  # where its node types were declared
    started_at: float = 0.0
    parent_run_id: str | None = None  # the run it re-runs
    workflow_version: int | None = None  # the deployed version it runs, if deployed
    trigger: str = "manual"  # what started it (one of RUN_TRIGGERS)

    @property
    def node_ids(self) -> list[str]:
        """The top-level node ids of the document, in order."""
        return [
            str(node["id"])
            for node in self.document.get("nodes") or []
            if isinstance(node, dict) and "id" in node
        ]

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON object."""
        return {
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "status": self.status.value,
            "inputs": self.inputs,
            "document": self.document,
            "source": self.source,
            "manifests": list(self.manifests),
            "started_at": self.started_at,
            "parent_run_id": self.parent_run_id,
            "workflow_version": self.workflow_version,
            "trigger": self.trigger,
        }


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events of one run in sequence order, after a sequence number.

    ``next_seq`` is the ``after_seq`` of the next page (the last sequence number here, or the
    one asked for when there are none); ``more`` says whether events past this page exist.
    """

    execution_id: str
    events: tuple[Event, ...]
    next_seq: int
    more: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The page as one JSON object (``runs events --json`` prints only its ``events``)."""
        return {
            "execution_id": self.execution_id,
            "events": [event.to_dict() for event in self.events],
            "next_seq": self.next_seq,
            "more": self.more,
        }


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What ``runs cancel`` did: ``running`` (requested of the host that executes the run)
    or ``cancelled`` (done at once)."""

    execution_id: str
    status: RunStatus

    def to_dict(self) -> dict[str, Any]:
        """The ``runs cancel --json`` object."""
        return {"execution_id": self.execution_id, "status": self.status.value}


_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def usage_of(nodes: Iterable[NodeResult]) -> dict[str, Any] | None:
    """The sum of the ``usage`` the nodes' outputs report (``llm.chat``'s, or any node's that
    gives ``{prompt_tokens, completion_tokens, total_tokens}`` integers); None when none does.
    ``estimated`` is true when any part was counted by the host rather than the server."""
    total = dict.fromkeys(_TOKEN_KEYS, 0)
    estimated = False
    found = False
    for node in nodes:
        output = node.output
        usage = output.get("usage") if isinstance(output, dict) else None
        if not isinstance(usage, dict):
            continue
        counts = [usage.get(key) for key in _TOKEN_KEYS]
        if not all(type(n) is int for n in counts):
            continue
        found = True
        for key, count in zip(_TOKEN_KEYS, counts, strict=True):
            total[key] += int(count or 0)
        estimated = estimated or usage.get("estimated") is True
    if not found:
        return None
    return {**total, "estimated": estimated}
