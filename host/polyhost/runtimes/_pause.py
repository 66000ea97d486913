"""How a node asks for its run to pause, and what a paused node waits for."""

from __future__ import annotations

from typing import Any

from .._errors import PolyhostError

__all__ = ["PauseRequested"]


class PauseRequested(PolyhostError):
    """Raised by a handler to pause the run at this node.

    The run saves its state and ends with status ``paused``; it holds no process while it waits.
    ``kind`` says what resumes it: ``approval`` (a person, with input checked against
    ``schema``), ``timer`` (``wake_at`` falling due), or any other word for a handler of your own,
    which runs again on resume with ``ctx.resume_input`` set.
    """

    code = "paused"

    def __init__(
        self,
        kind: str = "custom",
        *,
        prompt: str | None = None,
        schema: dict[str, Any] | None = None,
        wake_at: float | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"paused ({kind})")
        self.kind = kind
        self.prompt = prompt
        self.schema = schema
        self.wake_at = wake_at
        self.detail = detail or {}

    def info(self, node: str) -> dict[str, Any]:
        """What the paused node waits for, as the run's ``pause`` entry shows it."""
        return {
            "node": node,
            "kind": self.kind,
            "prompt": self.prompt,
            "schema": self.schema,
            "wake_at": self.wake_at,
            **({"detail": self.detail} if self.detail else {}),
        }
