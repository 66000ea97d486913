"""Which wasm calls run inline, on the event loop's thread, instead of on a worker thread.

Handing a call to a worker thread and back costs more than a short guest runs (some 40-80 µs
against 30 µs for a whole trivial reactor call), so short calls run inline. Only a reactor
without WASI qualifies: it can do nothing but compute, log and stream chunks, so a call cut
short can be run again on a thread with no effect seen twice (its logs and chunks are held back
until it ends). An inline call gets a time slice; past it the epoch check stops the guest
(within one tick, so the loop is held at most a slice plus a tick) and the call is re-run on a
thread.

Whether a module's calls are short is learned from its calls: a module starts on threads, goes
inline after a streak of short calls, and goes back to threads when an inline call overruns its
slice. Each overrun doubles the streak needed to go inline again, so a module whose calls are
sometimes long settles on threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["INLINE_SLICE", "EventBuffer", "InlinePace"]

INLINE_SLICE = 0.001  # seconds an inline call may run before it is moved to a thread
_SHORT = INLINE_SLICE / 4  # a call this short on a thread counts towards going inline
_FIRST_STREAK = 8
_MAX_STREAK = 4096


@dataclass(slots=True)
class _Record:
    streak: int = 0
    needed: int = _FIRST_STREAK


class InlinePace:
    """Per module, whether its next call should run inline."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}

    def inline(self, module: str) -> bool:
        record = self._records.get(module)
        return record is not None and record.streak >= record.needed

    def ran(self, module: str, seconds: float) -> None:
        """A call of ``module`` finished in ``seconds`` (inline or on a thread)."""
        record = self._records.get(module)
        if record is None:
            if len(self._records) >= 4096:  # many modules over a long session: start afresh
                self._records.clear()
            record = self._records[module] = _Record()
        if seconds <= _SHORT or (record.streak >= record.needed and seconds <= INLINE_SLICE):
            record.streak += 1
        else:
            record.streak = 0

    def overran(self, module: str) -> None:
        """An inline call of ``module`` ran past its slice."""
        record = self._records.setdefault(module, _Record())
        record.streak = 0
        record.needed = min(record.needed * 2, _MAX_STREAK)


class EventBuffer:
    """Logs and chunks of an inline call, passed on when it ends (or dropped if it is re-run)."""

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: list[tuple[bool, tuple[Any, ...]]] = []

    def log(self, level: str, message: str) -> None:
        self._events.append((True, (level, message)))

    def chunk(self, value: Any) -> None:
        self._events.append((False, (value,)))

    def flush(self, log: Callable[..., None], chunk: Callable[..., None]) -> None:
        events, self._events = self._events, []
        for is_log, args in events:
            (log if is_log else chunk)(*args)
