"""What the CLI prints: JSON, diagnostics, error lines, summaries and tables."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from .._errors import CompileError, ExpressionError, InputError, NodeError, PolyhostError
from ..events._events import Event
from ..events._result import RunDetails, RunOverview, RunResult, RunStatus
from ..workflow._catalog import NodeType
from ..workflow._diagnostics import Diagnostic

__all__ = [
    "STATUS_ICON",
    "STATUS_STYLE",
    "catalog_table",
    "diagnostic_dicts",
    "error_dict",
    "error_text",
    "event_line",
    "format_ms",
    "format_time",
    "json_only_stdout",
    "pause_text",
    "print_json",
    "resume_command",
    "run_details",
    "run_summary",
    "runs_table",
    "stderr_console",
    "stdout_console",
    "waiting",
]

_PIPE_WIDTH = 240

STATUS_STYLE: dict[str, str] = {
    "pending": "dim",
    "running": "yellow",
    "retrying": "yellow",
    "completed": "green",
    "failed": "bold red",
    "skipped": "dim",
    "cancelled": "magenta",
    "paused": "blue",
    "invalid": "bold red",
}
STATUS_ICON: dict[str, str] = {
    "pending": "·",
    "running": "▸",
    "retrying": "↻",
    "completed": "✔",
    "failed": "✘",
    "skipped": "↷",
    "cancelled": "■",
    "paused": "⏸",
}


def stdout_console() -> Console:
    """The console for results; soft wrap keeps long lines whole when piped."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped: tables take their natural width instead of being cut to 80 columns.
        console.width = _PIPE_WIDTH
    return console


def stderr_console() -> Console:
    """The console for errors and diagnostics."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def json_only_stdout(active: bool = True) -> Iterator[None]:
    """While inside, whatever would reach stdout goes to stderr instead, down to the file
    descriptor (C extensions, child processes, threads of a handler): stdout of ``--json``
    holds only the object printed after."""
    if not active:
        yield
        return
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):  # no such descriptors: nothing to guard
        yield
        return
    try:
        yield
    finally:
        with suppress(OSError, ValueError, AttributeError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document on stdout, untouched by rich (no wrap, no colour)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def format_ms(ms: float | None) -> str:
    """A duration for people: ``850 ms``, ``1.25 s``, ``3m 04s``."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(ts: float | None) -> str:
    """A timestamp in local time, to the second."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def error_text(exc: PolyhostError) -> str:
    """One line naming the node and the field where the error knows them."""
    node = getattr(exc, "node", None)
    field = getattr(exc, "field", None)
    return _located(exc.message, node, field, exc.code)


def error_dict(exc: PolyhostError) -> dict[str, Any]:
    """The ``error`` member of the ``--json`` object for an error raised before a run."""
    if isinstance(exc, CompileError):
        first = next((d for d in exc.diagnostics if d.severity == "error"), None)
        if first is not None:
            return {"node": first.node, "code": first.code, "message": first.message}
    return {"node": getattr(exc, "node", None), "code": exc.code, "message": exc.message}


def diagnostic_dicts(exc: PolyhostError) -> list[dict[str, Any]]:
    """The diagnostics of an error that makes a workflow or its inputs invalid."""
    if isinstance(exc, CompileError):
        return [d.to_dict() for d in exc.diagnostics]
    field = exc.field if isinstance(exc, InputError | ExpressionError | NodeError) else None
    node = exc.node if isinstance(exc, ExpressionError | NodeError) else None
    return [Diagnostic("error", exc.code, exc.message, node, field).to_dict()]


def run_summary(
    result: RunResult, *, db: str | None = None, server: str | None = None
) -> RenderableType:
    """The lines after a run: status and duration, then outputs or the error.

    A paused run says what it waits for and the command that resumes it (with ``db`` or
    ``server``, the ``--db`` or ``--server`` the run was started with).
    """
    status = result.status.value
    head = Text()
    head.append(f"{STATUS_ICON.get(status, '')} {status}".strip(), style=STATUS_STYLE[status])
    head.append(f" in {format_ms(result.duration_ms)}")
    head.append(f"  run {result.execution_id}", style="dim")
    parts: list[RenderableType] = [head]
    if result.error:
        # assemble, not +: a Text's style covers all that is appended to it.
        parts.append(Text.assemble(("error: ", "bold red"), _result_error(result.error)))
    if result.status is RunStatus.PAUSED:
        for entry in waiting(result.pause):
            parts.append(Text.assemble(("waiting for: ", "bold blue"), pause_text(entry)))
        command = resume_command(result.execution_id, result.pause, db, server)
        parts.append(Text.assemble(("resume with: ", "bold"), command))
    if result.outputs is not None:
        parts.append(Text("outputs:", style="bold"))
        parts.append(_json(result.outputs))
    return Group(*parts)


def waiting(pause: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What a paused run waits for, one entry per paused node.

    The result's ``pause`` lists them under ``waiting``; a lone entry (``node``, ``kind``, ...)
    is read as a list of one.
    """
    if not pause:
        return []
    entries = pause.get("waiting")
    if isinstance(entries, list):
        return [entry for entry in entries if isinstance(entry, dict)]
    return [pause]


def pause_text(entry: dict[str, Any]) -> str:
    """One paused node in one line: node, kind, prompt and timer."""
    text = f"node '{entry['node']}'" if entry.get("node") else "the run"
    kind = entry.get("kind")
    if kind:
        text += f" ({kind})"
    if entry.get("prompt"):
        text += f": {entry['prompt']}"
    wake_at = entry.get("wake_at")
    if isinstance(wake_at, int | float) and not isinstance(wake_at, bool):
        text += f", due at {format_time(wake_at)}"
    return text


def resume_command(
    run_id: str, pause: dict[str, Any] | None, db: str | None = None, server: str | None = None
) -> str:
    """The command line that resumes a paused run, with an ``--input`` per expected field."""
    words = ["polyhost", "runs", "resume", run_id]
    if db:
        words += ["--db", shlex.quote(db)]
    if server:
        words += ["--server", shlex.quote(server)]
    entries = waiting(pause)
    names: dict[str, None] = {}  # ordered and unique: one input answers every approval
    for entry in entries:
        names.update(dict.fromkeys(_input_names(entry.get("schema"))))
    if names:
        words += [f"--input {shlex.quote(name)}=VALUE" for name in names]
    elif any(entry.get("kind") == "approval" for entry in entries):
        words.append("[--input KEY=VALUE]...")
    return " ".join(words)


def _input_names(schema: Any) -> list[str]:
    # The required fields when the schema has some, else every field it names.
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    properties = [str(name) for name in schema["properties"]]
    required = schema.get("required")
    if isinstance(required, list):
        named = [str(name) for name in required if str(name) in properties]
        if named:
            return named
    return properties


def run_details(
    result: RunResult,
    record: RunDetails | None,
    event_count: int,
    *,
    db: str | None = None,
    server: str | None = None,
) -> RenderableType:
    """``runs show``: the run, its inputs and outputs, a node table and the event count.

    A paused run also shows what it waits for (node, kind, prompt, timer, the schema of the
    resume input) and how to resume it. Without the run's ``record`` (a server's run), the
    rows it gives (start, source, inputs) are left out.
    """
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    status = result.status.value
    grid.add_row("run", result.execution_id)
    grid.add_row("workflow", result.workflow_id or (record.workflow_id if record else ""))
    grid.add_row("status", Text(status, style=STATUS_STYLE.get(status, "")))
    if record is not None:
        grid.add_row("started", format_time(record.started_at))
    grid.add_row("duration", format_ms(result.duration_ms))
    if record is not None:
        if record.parent_run_id:
            grid.add_row("rerun of", record.parent_run_id)
        if record.source:
            grid.add_row("source", record.source)
        grid.add_row("inputs", _json(record.inputs))
    if result.outputs is not None:
        grid.add_row("outputs", _json(result.outputs))
    if result.error:
        grid.add_row("error", Text(_result_error(result.error), style="red"))
    usage = result.usage
    if usage is not None:
        grid.add_row("tokens", _usage_text(usage))
    if result.status is RunStatus.PAUSED:
        _add_pause_rows(grid, result.execution_id, result.pause, db, server)
    nodes = Table(title=None, show_edge=False, pad_edge=False)
    for column in ("node", "status", "attempts", "duration", "detail"):
        nodes.add_column(column, no_wrap=column != "detail")
    for node_id, node in result.nodes.items():
        state = node.status.value
        detail = _result_error(node.error) if node.error else _preview(node.output)
        nodes.add_row(
            node_id,
            Text(f"{STATUS_ICON.get(state, '')} {state}", style=STATUS_STYLE.get(state, "")),
            str(node.attempts),
            format_ms(node.duration_ms),
            Text(detail, style="red" if node.error else "dim"),
        )
    footer = Text(f"{event_count} events", style="dim")
    where = f" --server {shlex.quote(server)}" if server else ""
    footer.append(f"  (polyhost runs events {result.execution_id}{where})", style="dim")
    return Group(grid, Text(""), nodes, Text(""), footer)


def _usage_text(usage: dict[str, Any]) -> str:
    text = (
        f"{usage['total_tokens']:,} ({usage['prompt_tokens']:,} prompt + "
        f"{usage['completion_tokens']:,} completion)"
    )
    return text + (", estimated" if usage.get("estimated") else "")


def _add_pause_rows(
    grid: Table, run_id: str, pause: dict[str, Any] | None, db: str | None, server: str | None
) -> None:
    for entry in waiting(pause):
        grid.add_row("waiting for", Text(pause_text(entry), style=STATUS_STYLE["paused"]))
        if entry.get("schema") is not None:
            grid.add_row("expects", _json(entry["schema"]))
    grid.add_row("resume with", resume_command(run_id, pause, db, server))


def runs_table(runs: Iterable[RunOverview]) -> Table:
    """``runs list``: one row per run, newest first."""
    table = Table(show_edge=False, pad_edge=False)
    for column in ("run", "workflow", "status", "started", "duration", "nodes"):
        table.add_column(column, no_wrap=True)
    for run in runs:
        status = run.status.value
        table.add_row(
            run.execution_id,
            run.workflow_id,
            Text(status, style=STATUS_STYLE.get(status, "")),
            format_time(run.started_at),
            format_ms(run.duration_ms),
            _counts(run.nodes),
        )
    return table


def catalog_table(types: Iterable[NodeType]) -> Table:
    """``polyhost nodes``: every node type with its runtime."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("type", no_wrap=True, style="bold")
    table.add_column("runtime", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("ports", no_wrap=True)
    table.add_column("description")
    for node_type in types:
        ports = ", ".join(node_type.ports) or "-"
        if node_type.ports_param:
            ports += f" + {node_type.ports_param}"
        table.add_row(
            node_type.type, node_type.runtime, node_type.version, ports, node_type.description
        )
    return table


def event_line(event: Event, start: float) -> Text:
    """One event of ``runs events``: sequence, time since the run began, type, node, data."""
    line = Text(f"{event.seq:>5}  +{event.ts - start:8.3f}s  ")
    line.append(f"{event.type.value:<15}", style="bold")
    if event.node:
        line.append(f" {event.node}", style="cyan")
    if event.data:
        line.append(" " + json.dumps(event.data, ensure_ascii=False, default=str), style="dim")
    return line


def _located(message: str, node: str | None, field: str | None, code: str | None) -> str:
    where = []
    if node:
        where.append(f"node '{node}'")
    if field:
        where.append(f"field '{field}'")
    text = f"{', '.join(where)}: {message}" if where else message
    return f"{text} [{code}]" if code else text


def _result_error(error: dict[str, Any]) -> str:
    return _located(
        str(error.get("message", "")), error.get("node"), error.get("field"), error.get("code")
    )


def _json(value: Any) -> RenderableType:
    return JSON(json.dumps(value, ensure_ascii=False, default=str), indent=2, highlight=True)


def _preview(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _counts(counts: dict[str, int]) -> Text:
    text = Text()
    for status in ("completed", "failed", "skipped", "cancelled", "paused", "running"):
        if counts.get(status):
            if text:
                text.append(" ")
            text.append(f"{counts[status]}{STATUS_ICON[status]}", style=STATUS_STYLE[status])
    return text
