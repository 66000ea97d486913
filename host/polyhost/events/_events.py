"""Run events: the one record of what happened, each with a per-run sequence number."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._capture import outside_nodes, release_node_output

__all__ = ["Event", "EventType"]

_log = logging.getLogger("polyhost")


class EventType(StrEnum):
    """Every transition of a run or a node."""

    RUN_STARTED = "run.started"
    RUN_RESUMED = "run.resumed"
    RUN_PAUSED = "run.paused"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    NODE_STARTED = "node.started"
    NODE_COMPLETED = "node.completed"
    NODE_FAILED = "node.failed"
    NODE_SKIPPED = "node.skipped"
    NODE_RETRYING = "node.retrying"
    NODE_CANCELLED = "node.cancelled"
    NODE_PAUSED = "node.paused"
    NODE_CHUNK = "node.chunk"
    LOG = "log"

    @property
    def is_terminal_run(self) -> bool:
        """True for the events that end a run (or pause it)."""
        return self in _RUN_ENDINGS


_RUN_ENDINGS = frozenset(
    {EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_PAUSED}
)


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one run. ``seq`` starts at 1 and has no gaps within a run."""

    run_id: str
    seq: int
    type: EventType
    ts: float
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the event."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "type": self.type.value,
            "ts": self.ts,
            "node": self.node,
            "data": self.data,
        }


Subscriber = Callable[[Event], None]


class EventLog:
    """Numbers a run's events and hands each to the subscribers, in order, synchronously.

    Subscribers run on the event loop and must not block (the store queues its writes; async
    consumers read from a memory stream). A subscriber that raises is logged and gets no more
    events of the run: a broken consumer (a closed stream, a display that cannot print a
    message) must not stop the run or keep it from being recorded.
    """

    __slots__ = ("_redact", "_subscribers", "run_id", "seq")

    def __init__(
        self,
        run_id: str,
        subscribers: list[Subscriber],
        redact: Callable[[Any], Any] | None = None,
        start_seq: int = 0,
    ) -> None:
        self.run_id = run_id
        self.seq = start_seq
        self._subscribers = subscribers
        self._redact = redact

    def emit(
        self, type_: EventType, node: str | None = None, data: dict[str, Any] | None = None
    ) -> Event:
        """Record an event and deliver it."""
        self.seq += 1
        payload = data if data is not None else {}
        if self._redact is not None:
            payload = self._redact(payload)
        event = Event(self.run_id, self.seq, type_, time.time(), node, payload)
        # Subscribers are the host's: what they print is no node's output, even when a node's
        # ctx.log called them.
        token = outside_nodes()
        try:
            for subscriber in self._subscribers:
                try:
                    subscriber(event)
                except Exception as exc:  # logged; the run goes on
                    self._drop(subscriber, exc)
        finally:
            release_node_output(token)
        return event

    def _drop(self, subscriber: Subscriber, exc: Exception) -> None:
        _log.warning(
            "run %s: an event subscriber failed and gets no more events: %s: %s",
            self.run_id,
            type(exc).__name__,
            exc,
        )
        # A new list: the loop in emit goes on over the old one.
        self._subscribers = [s for s in self._subscribers if s is not subscriber]
