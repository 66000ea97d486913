"""The run's progress on a terminal: a node streaming a reply shows its newest words while it
runs, the tool it waits on, and its usual note again once it settles; plain lines stay one per
transition."""

from __future__ import annotations

import io
import time
from typing import Any

from rich.console import Console

from polyhost.cli._progress import LiveProgress, PlainProgress
from polyhost.events._events import Event, EventType


class _Events:
    """Events of one run, numbered as the engine numbers them."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, kind: EventType, node: str | None = None, **data: Any) -> Event:
        self.seq += 1
        return Event("run-1", self.seq, kind, time.time(), node, data)

    def delta(self, node: str, text: str, step: int = 1) -> Event:
        return self(EventType.NODE_CHUNK, node, data={"delta": text, "step": step})


def _console() -> Console:
    return Console(file=io.StringIO(), record=True, width=160, height=40, color_system=None)


def _board(progress: LiveProgress, console: Console) -> str:
    console.print(progress.render())
    return console.export_text()


def _line(board: str, node: str) -> str:
    return next(line for line in board.splitlines() if f" {node} " in f" {line} ")


def test_a_streaming_reply_shows_its_newest_words_on_one_line() -> None:
    console = _console()
    progress = LiveProgress(console, ["ask", "other"], "chat")
    ev = _Events()
    progress.on_event(ev(EventType.RUN_STARTED))
    progress.on_event(ev(EventType.NODE_STARTED, "ask", type="llm.chat", attempt=1))
    progress.on_event(ev.delta("ask", "The capital of France\nis"))
    line = _line(_board(progress, console), "ask")
    assert "running" in line
    assert "The capital of France is" in line

    # A long reply: the board keeps up with its end, not its start.
    words = [f"word{i}" for i in range(400)]
    for word in words:
        progress.on_event(ev.delta("ask", word + " "))
    line = _line(_board(progress, console), "ask")
    assert "word399" in line
    assert "word393" in line
    assert "capital" not in line
    assert "word100 " not in line
    assert "…" in line
    note = line[line.index("…") :].rstrip()
    assert len(note) <= 62
    # The other node's row knows nothing of it.
    assert "word" not in _line(_board(progress, console), "other")


def test_a_later_step_replaces_the_reply_and_a_running_tool_is_named() -> None:
    console = _console()
    progress = LiveProgress(console, ["ask"], "chat")
    ev = _Events()
    progress.on_event(ev(EventType.NODE_STARTED, "ask", type="llm.chat", attempt=1))
    progress.on_event(ev.delta("ask", "Let me look that up"))
    progress.on_event(ev(EventType.NODE_CHUNK, "ask", data={"tool_call": _call("c1", "search")}))
    progress.on_event(ev(EventType.NODE_CHUNK, "ask", data={"tool_call": _call("c2", "fetch")}))
    line = _line(_board(progress, console), "ask")
    assert "tool search, fetch..." in line
    assert "look that up" not in line

    progress.on_event(ev(EventType.NODE_CHUNK, "ask", data={"tool_result": _call("c1", "search")}))
    assert "tool fetch..." in _line(_board(progress, console), "ask")
    # A tool's own chunks are its business: they do not show as the reply.
    tool_chunk = {"tool_chunk": {"name": "fetch", "call_id": "c2", "data": {"delta": "x"}}}
    progress.on_event(ev(EventType.NODE_CHUNK, "ask", data=tool_chunk))
    failed = {**_call("c2", "fetch"), "error": {"code": "http", "message": "404"}}
    progress.on_event(ev(EventType.NODE_CHUNK, "ask", data={"tool_result": failed}))
    line = _line(_board(progress, console), "ask")
    assert "tool" not in line
    assert "Let me look that up" in line

    progress.on_event(ev.delta("ask", "Paris it is.", step=2))
    line = _line(_board(progress, console), "ask")
    assert "Paris it is." in line
    assert "look that up" not in line


def test_a_settled_node_shows_its_usual_note_again() -> None:
    console = _console()
    progress = LiveProgress(console, ["ok", "broken", "again"], "chat")
    ev = _Events()
    for node in ("ok", "broken"):
        progress.on_event(ev(EventType.NODE_STARTED, node, type="llm.chat", attempt=1))
        progress.on_event(ev.delta(node, "half a reply"))
    progress.on_event(ev(EventType.NODE_COMPLETED, "ok", attempt=1, duration_ms=1200.0))
    error = {"code": "llm_invalid_reply", "message": "not JSON"}
    progress.on_event(ev(EventType.NODE_FAILED, "broken", error=error))
    # A second attempt: its note names the attempt, its reply starts afresh.
    progress.on_event(ev(EventType.NODE_STARTED, "again", type="llm.chat", attempt=1))
    progress.on_event(ev.delta("again", "first try"))
    progress.on_event(ev(EventType.NODE_RETRYING, "again", attempt=1, delay=2, error=error))
    retrying = _line(_board(progress, console), "again")
    assert "in 2.00 s after not JSON [llm_invalid_reply]" in retrying
    assert "first try" not in retrying
    progress.on_event(ev(EventType.NODE_STARTED, "again", type="llm.chat", attempt=2))
    progress.on_event(ev.delta("again", "second try"))

    board = _board(progress, console)
    ok = _line(board, "ok")
    assert "completed" in ok and "half a reply" not in ok
    broken = _line(board, "broken")
    assert "not JSON [llm_invalid_reply]" in broken and "half a reply" not in broken
    assert "attempt 2 · second try" in _line(board, "again")
    assert "first try" not in board


def test_plain_progress_prints_no_line_for_chunks() -> None:
    console = _console()
    progress = PlainProgress(console)
    ev = _Events()
    progress.on_event(ev(EventType.RUN_STARTED))
    progress.on_event(ev(EventType.NODE_STARTED, "ask", type="llm.chat", attempt=1))
    for piece in ("Hel", "lo", " there"):
        progress.on_event(ev.delta("ask", piece))
    progress.on_event(ev(EventType.NODE_CHUNK, "ask", data={"tool_call": _call("c1", "search")}))
    progress.on_event(ev(EventType.NODE_COMPLETED, "ask", attempt=1, duration_ms=50.0))
    lines = console.export_text().splitlines()
    assert len(lines) == 3
    assert lines[1].endswith("ask running")
    assert "ask completed" in lines[2]
    assert not any("Hel" in line or "search" in line for line in lines)


def _call(call_id: str, name: str) -> dict[str, Any]:
    return {"step": 1, "id": call_id, "name": name}
