"""A decoder of server-sent events (the WHATWG ``text/event-stream`` format), fed with bytes.

Small enough to own: the client needs the ``id`` of every message to resume after a dropped
connection, and nothing else a library would add. Lines end with CRLF, LF or CR (a CR that
ends a chunk ends its line, and an LF opening the next chunk completes that CRLF); ``data``
lines join with newlines; a line starting with ``:`` is a comment (the server's heartbeat); a
message is dispatched by a blank line, and one cut off by the end of the stream is dropped.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ._errors import InvalidResponseError

__all__ = ["SseDecoder", "SseMessage"]

_EOL = re.compile(r"\r\n|\r|\n")
# Far above any event the server sends (a run's values are bounded by the host's limits), but
# a stream that never ends a line cannot take all the memory.
MAX_MESSAGE_CHARS = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseMessage:
    """One dispatched message: its ``event`` type (``message`` when unnamed), its ``data``,
    and the last event id the stream set (``None`` before any ``id:``)."""

    event: str
    data: str
    id: str | None = None


class SseDecoder:
    """Turns the bytes of a stream, chunk by chunk, into messages.

    Each chunk is scanned once: the start of a line that the chunk does not end waits in a
    list, so a large message arriving in many chunks costs time in proportion to its size.
    """

    __slots__ = (
        "_after_cr",
        "_data",
        "_decoder",
        "_event",
        "_has_data",
        "_partial",
        "_partial_size",
        "_size",
        "_started",
        "comments",
        "last_id",
        "retry_ms",
    )

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # the start of the current line
        self._partial_size = 0
        self._after_cr = False  # the last line ended with CR: an LF first is its CRLF
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._size = 0  # characters of the current message's data
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self.comments = 0  # heartbeats seen

    def feed(self, chunk: bytes) -> list[SseMessage]:
        """The messages completed by ``chunk``; the end of a stream completes none (a message
        it cuts off is dropped)."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr:
            self._after_cr = False
            text = text.removeprefix("\n")
        messages: list[SseMessage] = []
        start = 0
        for match in _EOL.finditer(text):
            line = text[start : match.start()]
            if self._partial:
                line = "".join(self._partial) + line
                self._partial = []
                self._partial_size = 0
            self._line(line, messages)
            start = match.end()
        self._after_cr = text.endswith("\r")
        if start < len(text):
            self._partial.append(text[start:])
            self._partial_size += len(text) - start
        if self._partial_size + self._size > MAX_MESSAGE_CHARS:
            raise InvalidResponseError(
                f"an event-stream message is over {MAX_MESSAGE_CHARS} characters"
            )
        return messages

    def _line(self, line: str, messages: list[SseMessage]) -> None:
        if not line:
            self._dispatch(messages)
            return
        if line.startswith(":"):
            self.comments += 1
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
            self._size += len(value) + 1
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        # Any other field is ignored, as the format says.

    def _dispatch(self, messages: list[SseMessage]) -> None:
        if self._has_data:
            messages.append(
                SseMessage(self._event or "message", "\n".join(self._data), self.last_id)
            )
        self._event = ""
        self._data = []
        self._has_data = False
        self._size = 0
