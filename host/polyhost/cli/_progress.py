"""Progress of a run as it happens: a live board on a terminal, plain lines elsewhere.

Both are event subscribers: the engine calls ``on_event`` on the event loop, so they only update
state (the live board) or write one short line (plain), and never block. A node that streams a
reply (``{delta, step}`` chunks, as ``llm.chat`` does) shows its newest words on the board while
it runs; the plain lines stay one per transition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ..events._events import Event, EventType
from ._render import STATUS_ICON, STATUS_STYLE, format_ms

__all__ = ["LiveProgress", "NullProgress", "PlainProgress", "Progress"]

_NODE_STATUS: dict[EventType, str] = {
    EventType.NODE_STARTED: "running",
    EventType.NODE_RETRYING: "retrying",
    EventType.NODE_COMPLETED: "completed",
    EventType.NODE_FAILED: "failed",
    EventType.NODE_SKIPPED: "skipped",
    EventType.NODE_CANCELLED: "cancelled",
    EventType.NODE_PAUSED: "paused",
}
_FINAL = frozenset({"completed", "failed", "skipped", "cancelled"})
# Paused is not final (the node runs on when the run resumes), but nothing moves meanwhile.
_SETTLED = _FINAL | {"paused"}
_COUNTED = ("completed", "failed", "skipped", "running", "paused", "cancelled")
_TAIL = 60  # characters of a streaming reply the board shows
# A reply is shown on one line: line breaks, tabs and other control characters become spaces.
_ONE_LINE = str.maketrans(dict.fromkeys([*range(32), 127], " "))


class Progress(Protocol):
    """What a run's progress display offers the ``run`` command."""

    def on_event(self, event: Event) -> None:
        """Take one event of the run."""
        ...

    def __enter__(self) -> Progress: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class NullProgress:
    """No progress at all (``--json``)."""

    def on_event(self, event: Event) -> None:
        """Ignore the event."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class PlainProgress:
    """One line per node transition, for logs and pipes."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._start: float | None = None

    def on_event(self, event: Event) -> None:
        """Print the line for a transition (nothing for chunks)."""
        line = _plain_line(event)
        if line is None:
            return
        if self._start is None:
            self._start = event.ts
        stamp = f"+{event.ts - self._start:7.3f}s "
        self._console.print(Text.assemble((stamp, "dim"), line))

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


@dataclass(slots=True)
class _Row:
    node: str
    status: str = "pending"
    started: float | None = None
    duration_ms: float | None = None
    attempt: int = 0
    note: str = ""
    spinner: Spinner | None = None
    # The streaming reply of the running attempt: only its tail is kept, so a chunk costs the
    # same however long the reply grows.
    reply_step: int = 0
    reply_tail: str = ""
    reply_cut: bool = False
    tools: dict[str, str] = field(default_factory=dict)  # tool calls running: id -> name


class LiveProgress:
    """A live table of every node (state, elapsed time, attempts) with running counts.

    rich redraws from its own thread, so the rows are guarded by a lock that ``on_event``
    holds only for a dictionary update.
    """

    def __init__(
        self,
        console: Console,
        node_ids: Iterable[str],
        title: str,
        *,
        known: Mapping[str, str] | None = None,
    ) -> None:
        self._console = console
        self._title = title
        self._rows: dict[str, _Row] = {node: _Row(node) for node in node_ids}
        # A resumed or retried run: its nodes start where the stored run left them.
        for node, status in (known or {}).items():
            if status in _SETTLED:
                self._rows.setdefault(node, _Row(node)).status = status
        self._lock = threading.Lock()
        self._begin = time.time()
        self._run_id: str | None = None
        self._live = Live(_Board(self), console=console, refresh_per_second=8, transient=False)

    def on_event(self, event: Event) -> None:
        """Update the node's row; log lines are printed above the board."""
        if event.type is EventType.RUN_STARTED:
            self._run_id = event.run_id
            return
        if event.type is EventType.LOG:
            message = str(event.data.get("message", ""))
            level = str(event.data.get("level", "info"))
            self._console.print(
                Text.assemble((f"{event.node or 'run'} [{level}] ", "dim"), message)
            )
            return
        if event.type is EventType.NODE_CHUNK:
            if event.node is not None:
                with self._lock:
                    row = self._rows.get(event.node)
                    if row is not None and row.status == "running":
                        _take_chunk(row, event.data.get("data"))
            return
        status = _NODE_STATUS.get(event.type)
        if status is None or event.node is None:
            return
        with self._lock:
            row = self._rows.get(event.node)
            if row is None:
                row = self._rows[event.node] = _Row(event.node)
            _apply(row, status, event)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.stop()

    def render(self) -> RenderableType:
        """The board: a row per node (the interesting ones when there are too many), counts."""
        now = time.time()
        with self._lock:
            rows = list(self._rows.values())
            table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
            table.add_column("", no_wrap=True, width=2)
            table.add_column("node", no_wrap=True, style="bold")
            table.add_column("status", no_wrap=True)
            table.add_column("time", no_wrap=True, justify="right")
            table.add_column("", overflow="ellipsis", no_wrap=True)
            shown = _visible(rows, max(5, self._console.height - 6))
            for row in shown:
                table.add_row(*_cells(row, now))
            counts = _count(rows)
        footer = Text()
        footer.append(self._title, style="bold")
        if self._run_id:
            footer.append(f"  {self._run_id}", style="dim")
        footer.append("  ")
        done = counts["completed"] + counts["failed"] + counts["skipped"] + counts["cancelled"]
        footer.append(f"{done}/{len(rows)} done")
        for status in ("completed", "failed", "skipped", "running", "paused", "cancelled"):
            if counts[status]:
                footer.append(f"  {counts[status]} {status}", style=STATUS_STYLE[status])
        footer.append(f"  {format_ms((now - self._begin) * 1000)}", style="dim")
        hidden = len(rows) - len(shown)
        parts: list[RenderableType] = [table]
        if hidden:
            parts.append(Text(f"  … {hidden} more nodes", style="dim"))
        parts.append(footer)
        return Group(*parts)


class _Board:
    """The renderable rich refreshes; it asks the progress for a fresh view each time."""

    def __init__(self, progress: LiveProgress) -> None:
        self._progress = progress

    def __rich__(self) -> RenderableType:
        return self._progress.render()


def _apply(row: _Row, status: str, event: Event) -> None:
    data = event.data
    row.status = status
    # Any transition ends what the attempt was streaming (a new attempt streams a new reply).
    row.reply_step, row.reply_tail, row.reply_cut = 0, "", False
    row.tools.clear()
    if status == "running":
        row.started = event.ts
        row.duration_ms = None
        row.attempt = int(data.get("attempt", row.attempt + 1) or 1)
        row.note = f"attempt {row.attempt}" if row.attempt > 1 else ""
        row.spinner = Spinner("dots", style="yellow")
    elif status == "retrying":
        row.note = _retry_note(data)
    elif status in _SETTLED:
        if row.started is not None:
            row.duration_ms = _duration(data, (event.ts - row.started) * 1000)
        row.spinner = None
        if status == "failed":
            row.note = _error_note(data.get("error"))
        elif status == "skipped":
            row.note = str(data.get("reason", ""))
        elif status == "completed":
            row.note = f"attempt {row.attempt}" if row.attempt > 1 else ""
        elif status == "paused":
            row.note = _pause_note(data)


def _take_chunk(row: _Row, data: Any) -> None:
    """Fold one streamed chunk into the row: a piece of the reply, or a tool call starting or
    ending; any other chunk is not shown."""
    if not isinstance(data, dict):
        return
    delta = data.get("delta")
    if isinstance(delta, str):
        step = data.get("step")
        if isinstance(step, int) and step != row.reply_step:
            # A new request to the model (after tool calls or a repair): a new reply.
            row.reply_step, row.reply_tail, row.reply_cut = step, "", False
        if len(delta) > _TAIL:
            delta = delta[-_TAIL:]
            row.reply_cut = True
        tail = row.reply_tail + delta.translate(_ONE_LINE)
        if len(tail) > _TAIL:
            tail = tail[-_TAIL:]
            row.reply_cut = True
        row.reply_tail = tail
        return
    call = data.get("tool_call")
    if isinstance(call, dict):
        row.tools[str(call.get("id"))] = str(call.get("name") or "?")
        return
    result = data.get("tool_result")
    if isinstance(result, dict):
        row.tools.pop(str(result.get("id")), None)


def _note(row: _Row) -> str:
    """The note column: while a node runs, the tool it waits on or the end of its reply."""
    live = ""
    if row.status == "running":
        if row.tools:
            live = f"tool {', '.join(row.tools.values())}..."
        elif row.reply_tail.strip():
            live = ("…" if row.reply_cut else "") + row.reply_tail.strip()
    if live and row.note:
        return f"{row.note} · {live}"
    return live or row.note


def _cells(row: _Row, now: float) -> tuple[RenderableType, ...]:
    style = STATUS_STYLE.get(row.status, "")
    icon: RenderableType = row.spinner or Text(STATUS_ICON.get(row.status, " "), style=style)
    if row.duration_ms is not None:
        elapsed = format_ms(row.duration_ms)
    elif row.started is not None and row.status in {"running", "retrying"}:
        elapsed = format_ms((now - row.started) * 1000)
    else:
        elapsed = ""
    note_style = "red" if row.status == "failed" else "dim"
    return (icon, row.node, Text(row.status, style=style), elapsed, Text(_note(row), note_style))


def _visible(rows: list[_Row], limit: int) -> list[_Row]:
    if len(rows) <= limit:
        return rows
    # Too many for the screen: what needs attention first, then the latest finished.
    rank = {"failed": 0, "paused": 0, "running": 1, "retrying": 1, "cancelled": 2}
    order = sorted(
        range(len(rows)),
        key=lambda i: (rank.get(rows[i].status, 3), -(rows[i].started or 0.0)),
    )
    keep = set(order[:limit])
    return [row for i, row in enumerate(rows) if i in keep]


def _count(rows: list[_Row]) -> dict[str, int]:
    counts = dict.fromkeys(_COUNTED, 0)
    for row in rows:
        key = "running" if row.status == "retrying" else row.status
        if key in counts:
            counts[key] += 1
    return counts


def _plain_line(event: Event) -> Text | None:
    data = event.data
    node = event.node or ""
    kind = event.type
    if kind is EventType.RUN_STARTED:
        return Text(f"run {event.run_id} started")
    if kind.is_terminal_run:
        return None  # the summary says it
    if kind is EventType.LOG:
        level = data.get("level", "info")
        return Text(f"{node or 'run'} [{level}] {data.get('message', '')}")
    status = _NODE_STATUS.get(kind)
    if status is None:
        return None
    text = Text(f"{node} ")
    text.append(status, style=STATUS_STYLE.get(status, ""))
    if status == "running":
        attempt = data.get("attempt", 1)
        if isinstance(attempt, int) and attempt > 1:
            text.append(f" (attempt {attempt})")
    elif status == "completed" and data.get("duration_ms") is not None:
        text.append(f" in {format_ms(float(data['duration_ms']))}")
    elif status == "failed":
        text.append(": " + _error_note(data.get("error")))
        if data.get("handled"):
            text.append(f" (handled: {data['handled']})")
    elif status == "retrying":
        text.append(": " + _retry_note(data))
    elif status == "skipped" and data.get("reason"):
        text.append(f" ({data['reason']})")
    elif status == "paused" and _pause_note(data):
        text.append(f" ({_pause_note(data)})")
    return text


def _pause_note(data: dict[str, Any]) -> str:
    # The event carries the pause object, or holds it under "pause".
    nested = data.get("pause")
    pause: dict[str, Any] = nested if isinstance(nested, dict) else data
    kind = str(pause.get("kind") or "")
    prompt = str(pause.get("prompt") or "")
    if kind and prompt:
        return f"{kind}: {prompt}"
    return kind or prompt


def _error_note(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error or "")
    message = str(error.get("message", ""))
    code = error.get("code")
    return f"{message} [{code}]" if code else message


def _retry_note(data: dict[str, Any]) -> str:
    parts = []
    delay = data.get("delay") or data.get("delay_s")
    if isinstance(delay, int | float):
        parts.append(f"in {format_ms(delay * 1000)}")
    error = data.get("error")
    if error:
        parts.append(f"after {_error_note(error)}")
    return " ".join(parts)


def _duration(data: dict[str, Any], fallback: float) -> float:
    value = data.get("duration_ms")
    return float(value) if isinstance(value, int | float) else fallback
