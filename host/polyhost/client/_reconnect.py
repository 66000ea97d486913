"""Following a run's event stream across dropped connections, without I/O.

:class:`StreamCursor` is what the sync and the async client share: the last sequence number
received (sent back as ``Last-Event-ID`` and ``?after=``), which events are new (a replay never
yields a sequence number twice), when the run has ended, and how long to wait before the next
attempt. A connection that delivered something (an event or a heartbeat) proves the server
healthy and starts the count of failed attempts again; attempts that deliver nothing count
up to ``retries``, with exponential backoff, and then the stream gives up with
:class:`ConnectionFailedError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import httpx
from pydantic import ValidationError

from ..api import EventModel
from ._errors import ConnectionFailedError, InvalidResponseError
from ._sse import SseDecoder, SseMessage
from ._wire import server_error, transport_reason

__all__ = ["RUN_ENDINGS", "StreamCursor"]

# The events after which the server closes the stream: nothing follows them. A pause is not
# one: the run goes on when it is resumed, and the stream stays open meanwhile.
RUN_ENDINGS = frozenset({"run.completed", "run.failed", "run.cancelled"})
# Answers that say "come back later" rather than "no".
_TRY_AGAIN = frozenset({429, 502, 503, 504})
_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0
_CLOSED_EARLY = "the server closed the stream before the run ended"


class StreamCursor:
    """Where a client is in one run's event stream, across connections."""

    __slots__ = (
        "_alive",
        "_new_events",
        "_reason",
        "failures",
        "finished",
        "last_seq",
        "retries",
        "retry_ms",
        "run_id",
        "url",
    )

    def __init__(self, url: str, run_id: str, after: int, retries: int) -> None:
        self.url = url
        self.run_id = run_id
        self.last_seq = after
        self.retries = retries
        self.failures = 0  # attempts in a row that delivered nothing
        self.finished = False
        self.retry_ms: int | None = None  # the server's `retry:` advice
        self._alive = False
        self._new_events = False
        self._reason = ""

    def headers(self) -> dict[str, str]:
        """The headers of the next attempt."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_seq > 0:
            headers["Last-Event-ID"] = str(self.last_seq)
        return headers

    def params(self) -> dict[str, int]:
        """The query of the next attempt (the same position as ``Last-Event-ID``, for the
        proxies that drop headers they do not know)."""
        return {"after": self.last_seq}

    def refused(self, response: httpx.Response) -> None:
        """A new connection was answered with an error (its body read): try again later
        after a 429 or a 502-504, else raise it as a :class:`ServerError`."""
        if response.status_code not in _TRY_AGAIN:
            raise server_error(response)
        self._reason = f"the server answered {response.status_code}"

    def opened(self, response: httpx.Response) -> SseDecoder:
        """A new connection was answered with success: the decoder of its body."""
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise InvalidResponseError(
                f"the stream of run {self.run_id} is {kind or 'untyped'}, not text/event-stream"
            )
        self._alive = False
        self._new_events = False
        self._reason = _CLOSED_EARLY
        return SseDecoder()

    def take(self, decoder: SseDecoder, messages: Iterable[SseMessage]) -> list[EventModel]:
        """The events of ``messages`` not yielded yet, up to the one that ends the run."""
        fresh: list[EventModel] = []
        if decoder.comments:
            self._alive = True
        if decoder.retry_ms is not None:
            self.retry_ms = decoder.retry_ms
        for message in messages:
            self._alive = True
            event = self._event(message)
            if event.seq <= self.last_seq:
                continue  # a replay of what was yielded before the connection dropped
            self.last_seq = event.seq
            self._new_events = True
            fresh.append(event)
            if event.type in RUN_ENDINGS:
                self.finished = True
                break
        if self._alive:
            self.failures = 0
        return fresh

    def broke(self, exc: httpx.TransportError) -> None:
        """The connection failed or dropped."""
        self._reason = transport_reason(exc)

    @property
    def needs_status(self) -> bool:
        """True when the server closed the stream without a new event: either the run has
        ended (and everything up to its last event was yielded before) or the server is
        going away. The run's status tells which."""
        return self._reason == _CLOSED_EARLY and not self._new_events

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; :class:`ConnectionFailedError` when the
        attempts in a row that delivered nothing are past ``retries``."""
        if not self._alive:
            self.failures += 1
        self._alive = False
        if self.failures > self.retries:
            raise ConnectionFailedError(
                self.url,
                f"the event stream of run {self.run_id} failed {self.failures} times in a row "
                f"after event {self.last_seq}: {self._reason}",
            )
        first = self.retry_ms / 1000 if self.retry_ms is not None else _FIRST_DELAY
        return float(min(_MAX_DELAY, first * 2.0 ** max(0, self.failures - 1)))

    def _event(self, message: SseMessage) -> EventModel:
        try:
            return EventModel.model_validate(json.loads(message.data))
        except (ValueError, ValidationError) as exc:
            raise InvalidResponseError(
                f"event {message.id or '?'} of run {self.run_id} is not an event object: {exc}"
            ) from None
