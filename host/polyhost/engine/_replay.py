"""Resumption: a graph's scheduler state and scope rebuilt from the results the store kept,
and its paused nodes taken up again (an approval given, a timer due, a body resumed)."""

from __future__ import annotations

import time
from typing import Any

from ..events._result import NodeResult, NodeStatus
from ._attempt import NodeAttempts

__all__ = ["Replay"]

# How a failed node that did not end its run was handled (it settled, so a resume keeps it).
_HANDLED = frozenset({"error_port", "continue"})


class Replay(NodeAttempts):
    """How a ``GraphRun`` resumes from the store (on top of how it runs one node)."""

    prefix: str

    async def _resume_paused(self, index: int, restored: NodeResult) -> int | None:
        info = dict(restored.output or {})
        kind = info.get("kind")
        record = self.results[index]
        record.attempts = restored.attempts
        if kind in ("approval", "timer"):
            self._state.mark_running(index)
        if kind == "approval":
            record.duration_ms = restored.duration_ms
            return await self._complete_resumed(index, dict(self.run.resume_input or {}))
        if kind == "timer":
            wake_at = float(info.get("wake_at") or 0)
            if time.time() < wake_at:
                self._pause(index, info)
                return None
            waited = float(info.get("detail", {}).get("seconds", 0.0))
            return await self._complete_resumed(index, {"waited": waited})
        if kind == "nested":
            # A loop or parallel node paused inside its body: run it again; its iterations
            # replay from the store and the paused body node resumes there.
            self._restored = {k: v for k, v in self._restored.items() if k != self.path(index)}
            return await self._run_one(index)
        # A handler's own pause: it runs again and reads ctx.resume_input.
        self._restored = {k: v for k, v in self._restored.items() if k != self.path(index)}
        return await self._run_one(index)

    async def _complete_resumed(self, index: int, output: dict[str, Any]) -> int | None:
        node = self.graph.nodes[index]
        record = self.results[index]
        record.started_at = record.started_at or time.time()
        ports = self._ports(node, {}, output, self.path(index))
        return await self._complete(index, output, ports)

    def _replay(self) -> list[int]:
        """Rebuild the scheduler state and scope from stored node results; the ready nodes."""
        state = self._state
        state.start()
        settled: list[tuple[int, int, NodeResult]] = []
        for index, node in enumerate(self.graph.nodes):
            stored = self._restored.get(self.prefix + node.id)
            if stored is None:
                continue
            if stored.settled_seq is not None and (
                stored.status is NodeStatus.COMPLETED
                or (stored.status is NodeStatus.FAILED and stored.reason in _HANDLED)
                or (stored.status is NodeStatus.SKIPPED and stored.reason == "when")
            ):
                settled.append((stored.settled_seq, index, stored))
        for _, index, stored in sorted(settled, key=lambda item: item[0]):
            node = self.graph.nodes[index]
            self.results[index] = stored
            if stored.status is NodeStatus.SKIPPED:
                state.skip(index)
                self.nulls.add(node.id)
                self.scope.set(node.id, None)
                continue
            state.complete(index, stored.ports or [])
            self.scope.set(node.id, stored.output)
            if stored.status is NodeStatus.FAILED:
                self.nulls.add(node.id)
        ready = []
        for index, node in enumerate(self.graph.nodes):
            current = state.state(index)
            if current == "skipped" and self.results[index].status is not NodeStatus.SKIPPED:
                self.results[index].status = NodeStatus.SKIPPED
                self.results[index].reason = "dead_path"
                self.nulls.add(node.id)
                self.scope.set(node.id, None)
            elif current == "ready":
                ready.append(index)
                stored = self._restored.get(self.prefix + node.id)
                if stored is not None and stored.status is NodeStatus.PAUSED:
                    self.results[index] = NodeResult(
                        status=NodeStatus.PAUSED, attempts=stored.attempts, output=stored.output
                    )
        return ready
