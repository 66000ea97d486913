"""The result of a run, in the shape of the CLI's ``--json`` object (spec section 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["NodeResult", "NodeStatus", "RunResult", "RunStatus"]


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
