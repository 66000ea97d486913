"""The commands against a polyhost server (``--server URL`` or ``$POLYHOST_SERVER``).

They print what their local forms print and exit with the same statuses: a run's progress
comes from the server's event stream into the same live board, its result from
``GET /runs/{id}`` into the same summary or ``--json`` object, and an error answer becomes the
error a local command would have raised (an invalid workflow or inputs exit 2, an unknown run
exits 1). The API token comes from ``$POLYHOST_API_TOKEN``, never from the command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from .._errors import (
    CompileError,
    InputError,
    PolyhostError,
    RunNotFoundError,
    RunStateError,
    WorkflowError,
    WorkflowLoadError,
)
from ..api import EventModel, RunSummaryModel
from ..client import Client, ServerError
from ..compile._loading import load_document
from ..events._events import Event, EventType
from ..events._result import RunResult, RunStatus
from ..workflow._diagnostics import Diagnostic
from ._guard import EXIT_OK, exit_status
from ._inputs import check_input_names, parse_inputs
from ._progress import LiveProgress, NullProgress, PlainProgress, Progress
from ._render import (
    STATUS_STYLE,
    event_line,
    format_ms,
    format_time,
    print_json,
    run_details,
    run_summary,
    stdout_console,
)

__all__ = [
    "SERVER_ENV",
    "cancel",
    "deploy",
    "list_runs",
    "local_only",
    "rerun",
    "resume",
    "retry",
    "run_workflow",
    "show_events",
    "show_run",
]

SERVER_ENV = "POLYHOST_SERVER"
_RUN_ENDINGS = frozenset({"run.completed", "run.failed", "run.cancelled"})
_PAGE = 1000  # events read per request
_SETTLE_TIMEOUT = 60.0  # for a run's result to show the end its last event told


def local_only(server: str | None, **options: object) -> None:
    """Refuse options that name local things (a store, manifests, environment variables)
    together with a server, which has its own."""
    if server is None:
        return
    given = [name for name, value in options.items() if value]
    if given:
        flags = ", ".join(f"--{name}" for name in given)
        raise typer.BadParameter(f"{flags} cannot be used with --server (the server has its own)")


def run_workflow(
    file: Path, pairs: list[str], *, inputs_file: Path | None, as_json: bool, server: str
) -> int:
    """``polyhost run FILE --server URL``: an ad-hoc run of the document read here."""
    inputs = parse_inputs(pairs, inputs_file)
    document = _read_document(file)
    if isinstance(document, dict):
        # As a local run, a document without an id takes the file's name.
        document.setdefault("id", file.stem)
        schema = document.get("inputs")
        check_input_names(inputs, schema if isinstance(schema, dict) else None)
        sent: dict[str, Any] | str = document
    else:
        sent = json.dumps(document)  # not a mapping: the server says what is wrong with it
    with _session(server) as client:
        accepted = client.run(sent, inputs)
        node_ids = _node_ids(document)
        title = str(document.get("id")) if isinstance(document, dict) else file.stem
        progress = _progress(as_json, node_ids, title, {})
        result = _follow(client, accepted.execution_id, 0, progress)
    return _finish(result, as_json, server)


def rerun(run_id: str, as_json: bool, server: str) -> int:
    """``polyhost runs rerun ID --server URL``."""
    with _session(server) as client:
        before = client.run_result(run_id)
        summary = client.rerun(before.execution_id)
        progress = _progress(as_json, list(before.nodes), before.workflow_id, {})
        result = _follow(client, summary.execution_id, 0, progress)
    return _finish(result, as_json, server)


def resume(
    run_id: str, pairs: list[str], *, inputs_file: Path | None, as_json: bool, server: str
) -> int:
    """``polyhost runs resume ID --server URL``."""
    # No input at all is not an empty input: a timer or a crashed run takes none.
    inputs = parse_inputs(pairs, inputs_file) if pairs or inputs_file else None
    with _session(server) as client:
        before = client.run_result(run_id)
        after = _last_seq(client, before.execution_id)
        client.resume(before.execution_id, inputs)
        result = _follow(client, before.execution_id, after, _carried_over(before, as_json))
    return _finish(result, as_json, server)


def retry(run_id: str, as_json: bool, server: str) -> int:
    """``polyhost runs retry ID --server URL``."""
    with _session(server) as client:
        before = client.run_result(run_id)
        after = _last_seq(client, before.execution_id)
        client.retry(before.execution_id)
        result = _follow(client, before.execution_id, after, _carried_over(before, as_json))
    return _finish(result, as_json, server)


def cancel(run_id: str, as_json: bool, server: str) -> int:
    """``polyhost runs cancel ID --server URL``."""
    with _session(server) as client:
        summary = client.cancel(run_id)
    if as_json:
        print_json({"execution_id": summary.execution_id, "status": summary.status})
        return EXIT_OK
    if summary.status == RunStatus.CANCELLED.value:
        line = Text("cancelled", style=STATUS_STYLE["cancelled"])
    else:
        line = Text("cancel requested (the host running it stops it within a few seconds)")
    stdout_console().print(Text.assemble(line, (f"  run {summary.execution_id}", "dim")))
    return EXIT_OK


def list_runs(
    limit: int, status: RunStatus | None, workflow: str | None, as_json: bool, server: str
) -> int:
    """``polyhost runs list --server URL``: the server's history, newest first."""
    with _session(server) as client:
        page = client.runs(workflow=workflow, status=status.value if status else None, limit=limit)
    if as_json:
        print_json([run.model_dump(mode="json") for run in page.runs])
    elif not page.runs:
        filtered = status is not None or workflow is not None
        stdout_console().print("no matching runs" if filtered else "no runs yet")
    else:
        stdout_console().print(_summaries_table(page.runs))
    return EXIT_OK


def show_run(run_id: str, as_json: bool, server: str) -> int:
    """``polyhost runs show ID --server URL``; ``--json`` prints the object ``run --json``
    prints."""
    with _session(server) as client:
        result = client.run_result(run_id)
        if as_json:
            print_json(result.to_dict())
            return EXIT_OK
        count = _last_seq(client, result.execution_id)  # sequence numbers have no gaps
    stdout_console().print(run_details(result, None, count, server=server))
    return EXIT_OK


def show_events(run_id: str, as_json: bool, server: str) -> int:
    """``polyhost runs events ID --server URL``."""
    with _session(server) as client:
        full_id = client.run_result(run_id).execution_id
        models = _all_events(client, full_id)
    if as_json:
        print_json([model.model_dump(mode="json") for model in models])
        return EXIT_OK
    console = stdout_console()
    events = [event for event in map(_event, models) if event is not None]
    start = events[0].ts if events else 0.0
    for event in events:
        console.print(event_line(event, start))
    return EXIT_OK


def deploy(file: Path, workflow_id: str | None, as_json: bool, server: str) -> int:
    """``polyhost deploy FILE --server URL``: the document read here, as the next version of
    ``--id`` (default: the document's id, else the file's name)."""
    document = _read_document(file)
    if not isinstance(document, dict):
        found = type(document).__name__
        raise CompileError(
            [Diagnostic("error", "invalid_value", f"a workflow is a mapping, found {found}")]
        )
    name = workflow_id or str(document.get("id") or file.stem)
    with _session(server) as client:
        deployed = client.deploy(name, document)
    if as_json:
        print_json(deployed.model_dump(mode="json"))
        return EXIT_OK
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("id", deployed.id)
    grid.add_row("version", str(deployed.version))
    grid.add_row("hash", deployed.hash)
    grid.add_row("created", "yes" if deployed.created else "no (the document is unchanged)")
    stdout_console().print(grid)
    return EXIT_OK


@contextmanager
def _session(server: str) -> Iterator[Client]:
    """A client of ``server``; its error answers become the errors local commands raise."""
    try:
        with Client(server) as client:
            yield client
    except ServerError as exc:
        raise _as_local(exc) from exc


def _as_local(exc: ServerError) -> PolyhostError:
    """The error a local command raises where the server answered ``exc``: the exit status
    and the message follow from it."""
    if exc.code == InputError.code:
        first = exc.diagnostics[0] if exc.diagnostics else None
        return InputError(exc.detail, field=exc.field or (first.field if first else None))
    if exc.status == 422:
        diagnostics = [
            Diagnostic(
                "warning" if d.severity == "warning" else "error",
                d.code,
                d.message,
                d.node,
                d.field,
            )
            for d in exc.diagnostics
        ]
        if any(d.severity == "error" for d in diagnostics):
            return CompileError(diagnostics)
        return WorkflowError(exc.detail, code=exc.code)
    if exc.status == 400 and exc.code == WorkflowLoadError.code:
        return WorkflowLoadError(exc.detail)
    if exc.status == 404 and exc.code.startswith("run_"):
        return RunNotFoundError(exc.detail, code=exc.code)
    if exc.status == 409:
        return RunStateError(exc.detail, code=exc.code)
    return exc


def _read_document(file: Path) -> Any:
    # The reader of a local run: the same errors for a missing file, bad YAML, a limit.
    return load_document(file)


def _node_ids(document: Any) -> list[str]:
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if not isinstance(nodes, list):
        return []
    return [str(node["id"]) for node in nodes if isinstance(node, dict) and "id" in node]


def _progress(as_json: bool, node_ids: list[str], title: str, known: Mapping[str, str]) -> Progress:
    console = stdout_console()
    if as_json:
        return NullProgress()
    if console.is_terminal:
        return LiveProgress(console, node_ids, title, known=known)
    return PlainProgress(console)


def _carried_over(before: RunResult, as_json: bool) -> Progress:
    # A continued run keeps what its nodes did; the board starts from there.
    known = {node_id: node.status.value for node_id, node in before.nodes.items()}
    return _progress(as_json, list(before.nodes), before.workflow_id, known)


def _follow(client: Client, run_id: str, after: int, progress: Progress) -> RunResult:
    """Show the run's events after ``after`` until it ends or pauses; its result.

    Ctrl-C cancels the run on the server, which then ends as cancelled, as a local run does;
    a second Ctrl-C stops at once.
    """
    interrupted = False
    with progress:
        while True:
            try:
                after, last_type = _show_events(client, run_id, after, progress)
                if last_type in _RUN_ENDINGS:
                    # The run's record may trail its last event by a moment.
                    return client.wait(run_id, timeout=_SETTLE_TIMEOUT)
                result = client.run_result(run_id)
                if result.status.is_final or result.status is RunStatus.PAUSED:
                    return result
                # Resumed meanwhile: follow on.
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                client.cancel(run_id)


def _show_events(
    client: Client, run_id: str, after: int, progress: Progress
) -> tuple[int, str | None]:
    """Hand events to ``progress`` up to the one that ends or pauses the run: the last
    sequence number and type seen."""
    last_type: str | None = None
    with client.stream(run_id, after=after) as events:
        for model in events:
            after, last_type = model.seq, model.type
            event = _event(model)
            if event is not None:
                progress.on_event(event)
            if model.type == EventType.RUN_PAUSED.value:
                break
    return after, last_type


def _event(model: EventModel) -> Event | None:
    """The event a local run would have handed its subscribers; ``None`` for a type this
    command does not know (a newer server's)."""
    try:
        kind = EventType(model.type)
    except ValueError:
        return None
    return Event(model.run_id, model.seq, kind, model.ts, model.node, dict(model.data))


def _all_events(client: Client, run_id: str) -> list[EventModel]:
    events: list[EventModel] = []
    while page := client.events(run_id, after=events[-1].seq if events else 0, limit=_PAGE):
        events += page
    return events


def _last_seq(client: Client, run_id: str) -> int:
    last = 0
    while page := client.events(run_id, after=last, limit=_PAGE):
        last = page[-1].seq
    return last


def _finish(result: RunResult, as_json: bool, server: str) -> int:
    if as_json:
        print_json(result.to_dict())
    else:
        stdout_console().print(run_summary(result, server=server))
    return exit_status(result.status)


def _summaries_table(runs: list[RunSummaryModel]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("run", "workflow", "version", "status", "trigger", "started", "duration"):
        table.add_column(column, no_wrap=True)
    for run in runs:
        table.add_row(
            run.execution_id,
            run.workflow_id,
            "-" if run.workflow_version is None else str(run.workflow_version),
            Text(run.status, style=STATUS_STYLE.get(run.status, "")),
            str(run.trigger),
            format_time(run.started_at),
            format_ms(run.duration_ms),
        )
    return table
