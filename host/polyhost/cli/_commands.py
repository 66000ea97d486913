"""The bodies of the commands; each returns the exit status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.text import Text

from .._errors import CompileError, PolyhostError
from ..events._events import Event
from ..events._result import CancelOutcome, RunResult, RunStatus
from ..host._config import HostConfig
from ..host._history import RunHistory
from ..host._host import Host
from ..workflow._catalog import Catalog
from ..workflow._diagnostics import Diagnostic
from ._guard import EXIT_INVALID, EXIT_OK, exit_status, interrupt_cancels, run_async
from ._inputs import check_input_names, parse_inputs
from ._progress import LiveProgress, NullProgress, PlainProgress, Progress
from ._render import (
    STATUS_STYLE,
    event_line,
    json_only_stdout,
    print_json,
    run_details,
    run_summary,
    runs_table,
    stderr_console,
    stdout_console,
)

__all__ = [
    "cancel",
    "catalog",
    "compile_workflow",
    "list_runs",
    "rerun",
    "resume",
    "retry",
    "run_workflow",
    "show_events",
    "show_run",
]

OnEvent = Callable[[Event], None]


def run_workflow(
    file: Path,
    pairs: list[str],
    *,
    inputs_file: Path | None,
    nodes: Path | None,
    as_json: bool,
    db: str | None,
    env: list[str] | None = None,
) -> int:
    """``polyhost run``."""
    inputs = parse_inputs(pairs, inputs_file)

    def prepare(host: Host) -> _Launch:
        # Compiled once: the plan (which carries the manifests it was loaded with, for
        # `runs rerun`) is what the host runs.
        compiled = host.compile(host.load(file, nodes))
        check_input_names(inputs, compiled.inputs.schema)
        _print_diagnostics(compiled.warnings)
        return _Launch(
            [n.id for n in compiled.workflow.nodes],
            compiled.workflow_id,
            lambda on_event: host.run(
                compiled, inputs, on_event=on_event, source=str(file.resolve())
            ),
        )

    return _execute(prepare, as_json, db, env)


def rerun(run_id: str, as_json: bool, db: str | None, env: list[str] | None = None) -> int:
    """``polyhost runs rerun``: a new run with the stored run's document and inputs."""
    return _execute(
        lambda host: _stored_run(
            host, run_id, lambda full_id, on_event: host.rerun(full_id, on_event=on_event)
        ),
        as_json,
        db,
        env,
    )


def resume(
    run_id: str,
    pairs: list[str],
    *,
    inputs_file: Path | None,
    as_json: bool,
    db: str | None,
    env: list[str] | None = None,
) -> int:
    """``polyhost runs resume``: continue a paused run, or one whose host died."""
    # No input at all is not an empty input: a timer or a crashed run takes none.
    inputs = parse_inputs(pairs, inputs_file) if pairs or inputs_file else None
    return _execute(
        lambda host: _stored_run(
            host,
            run_id,
            lambda full_id, on_event: host.resume(full_id, inputs, on_event=on_event),
            carry_over=True,
        ),
        as_json,
        db,
        env,
    )


def retry(run_id: str, as_json: bool, db: str | None, env: list[str] | None = None) -> int:
    """``polyhost runs retry``: continue a failed run from its failed nodes."""
    return _execute(
        lambda host: _stored_run(
            host,
            run_id,
            lambda full_id, on_event: host.retry(full_id, on_event=on_event),
            carry_over=True,
        ),
        as_json,
        db,
        env,
    )


def cancel(run_id: str, as_json: bool, db: str | None) -> int:
    """``polyhost runs cancel``: stop a run wherever it executes, or a paused one at once."""

    async def main() -> CancelOutcome:
        async with Host(HostConfig(db=db)) as host:
            full_id = host.history.resolve(run_id)
            return CancelOutcome(full_id, await host.cancel_run(full_id))

    outcome = run_async(main)
    if as_json:
        print_json(outcome.to_dict())
        return EXIT_OK
    console = stdout_console()
    if outcome.status is RunStatus.CANCELLED:
        line = Text("cancelled", style=STATUS_STYLE["cancelled"])
    else:
        line = Text("cancel requested (the host running it stops it within a few seconds)")
    console.print(Text.assemble(line, (f"  run {outcome.execution_id}", "dim")))
    return EXIT_OK


def serve(
    poll: float,
    nodes: Path | None,
    db: str | None,
    env: list[str] | None = None,
    *,
    address: str = "127.0.0.1",
    port: int = 8700,
    token_file: Path | None = None,
    workflows: Path | None = None,
    heartbeat: float = 15.0,
) -> int:
    """``polyhost serve``: the HTTP API and its event stream, schedules and webhooks; wakes due
    timers and recovers orphaned runs until stopped."""
    from .. import server  # noqa: PLC0415 (the server's dependencies load only for serve)

    console = stdout_console()

    def report(result: RunResult) -> None:
        line = Text.assemble(
            (f"{result.status.value:<10}", STATUS_STYLE.get(result.status.value, "")),
            f" run {result.execution_id} ({result.workflow_id})",
        )
        console.print(line)

    def report_error(run_id: str, exc: BaseException) -> None:
        # The run, when one was taken over, is recorded as failed; serving goes on.
        message = exc.message if isinstance(exc, PolyhostError) else f"{type(exc).__name__}: {exc}"
        where = f"run {run_id}: cannot be taken over" if run_id else "cannot poll the store"
        stderr_console().print(Text.assemble(("error: ", "bold red"), f"{where}: {message}"))

    settings = server.ServerSettings(
        host=address,
        port=port,
        tokens=server.read_tokens(token_file),
        workflows_dir=workflows,
        poll_every=poll,
        heartbeat_seconds=heartbeat,
    )
    sock = server.bind(settings)

    async def main() -> int:
        async with Host(_config(db, env)) as host:
            if nodes is not None:
                host.catalog.load_manifest(nodes)
            bound_host, bound_port = sock.getsockname()[:2]
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            auth = "bearer tokens required" if settings.tokens else "no tokens: loopback only"
            console.print(
                Text(
                    f"serving http://{shown}:{bound_port} ({auth}); polling every {poll:g}s "
                    "(Ctrl-C to stop)",
                    style="dim",
                )
            )
            await server.serve(host, settings, sock, on_result=report, on_error=report_error)
        return EXIT_OK

    try:
        return run_async(main)
    finally:
        sock.close()


def compile_workflow(file: Path, nodes: Path | None, as_json: bool) -> int:
    """``polyhost compile``: diagnostics only; warnings never change the exit status."""
    try:
        # Handlers are imported to be checked: what their modules print is not the JSON.
        with json_only_stdout(as_json), Host(HostConfig(), store=None) as host:
            diagnostics = host.check(host.load(file, nodes))
    except CompileError as exc:
        diagnostics = list(exc.diagnostics)
    except PolyhostError as exc:
        # Unreadable files and manifests, settings: every failure is a diagnostic, so that
        # `--json` always prints its one object.
        diagnostics = [
            Diagnostic(
                "error",
                exc.code,
                exc.message,
                getattr(exc, "node", None),
                getattr(exc, "field", None),
            )
        ]
    errors = sum(1 for d in diagnostics if d.severity == "error")
    if as_json:
        print_json({"ok": errors == 0, "diagnostics": [d.to_dict() for d in diagnostics]})
    else:
        _print_diagnostics(diagnostics)
        warnings = len(diagnostics) - errors
        verdict = Text(f"{file}: ")
        if errors:
            verdict.append(f"{errors} error(s)", style="bold red")
        else:
            verdict.append("ok", style="bold green")
        if warnings:
            verdict.append(f", {warnings} warning(s)", style="yellow")
        stdout_console().print(verdict)
    return EXIT_INVALID if errors else EXIT_OK


def catalog(nodes: Path | None) -> Catalog:
    """The built-in node types plus those of the ``--nodes`` manifest."""
    with Host(HostConfig(), store=None) as host:
        if nodes is not None:
            host.catalog.load_manifest(nodes)
        return host.catalog


def list_runs(
    limit: int, status: RunStatus | None, workflow: str | None, as_json: bool, db: str | None
) -> int:
    """``polyhost runs list``."""
    with _history(db) as history:
        runs = history.list(limit=limit, status=status, workflow_id=workflow).runs
    if as_json:
        print_json([run.to_dict() for run in runs])
    elif not runs:
        filtered = status is not None or workflow is not None
        stdout_console().print("no matching runs" if filtered else "no runs yet")
    else:
        stdout_console().print(runs_table(runs))
    return EXIT_OK


def show_run(run_id: str, as_json: bool, db: str | None) -> int:
    """``polyhost runs show``; ``--json`` prints the object ``run --json`` prints."""
    with _history(db) as history:
        result = history.result(run_id)
        if as_json:
            print_json(result.to_dict())
            return EXIT_OK
        details = history.details(result.execution_id)
        count = len(history.events(result.execution_id).events)
    stdout_console().print(run_details(result, details, count, db=db))
    return EXIT_OK


def show_events(run_id: str, as_json: bool, db: str | None) -> int:
    """``polyhost runs events``: the event log in sequence order."""
    with _history(db) as history:
        events = history.events(run_id).events
    if as_json:
        print_json([event.to_dict() for event in events])
        return EXIT_OK
    console = stdout_console()
    start = events[0].ts if events else 0.0
    for event in events:
        console.print(event_line(event, start))
    return EXIT_OK


@dataclass(slots=True)
class _Launch:
    """What a command that executes a run needs: the board's rows, its title, the call."""

    node_ids: list[str]
    title: str
    start: Callable[[OnEvent], Awaitable[RunResult]]
    known: dict[str, str] = field(default_factory=dict)  # node statuses a continued run had


def _execute(
    prepare: Callable[[Host], _Launch], as_json: bool, db: str | None, env: list[str] | None
) -> int:
    """The one path of run, rerun, resume and retry: host, progress, Ctrl-C, summary."""
    console = stdout_console()

    async def main() -> RunResult:
        async with Host(_config(db, env)) as host:
            launch = prepare(host)
            progress = _progress(console, as_json, launch)
            with progress, interrupt_cancels(host):
                return await launch.start(progress.on_event)

    with json_only_stdout(as_json):
        result = run_async(main)
    # Printed only once the host is closed: a failure while closing must not follow a
    # printed result (stdout holds exactly one JSON object).
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(run_summary(result, db=db))
    return exit_status(result.status)


def _config(db: str | None, env: list[str] | None) -> HostConfig:
    # `--env NAME`: variables workflows may read as env.NAME; their values are secrets.
    return HostConfig(db=db, env_allow=list(env or []))


def _stored_run(
    host: Host,
    run_id: str,
    start: Callable[[str, OnEvent], Awaitable[RunResult]],
    *,
    carry_over: bool = False,
) -> _Launch:
    details = host.history.details(run_id)
    known: dict[str, str] = {}
    if carry_over:
        # A continued run keeps what its nodes did; the board starts from there.
        nodes = host.history.result(details.execution_id).nodes
        known = {node_id: node.status.value for node_id, node in nodes.items()}
    return _Launch(
        details.node_ids,
        details.workflow_id,
        lambda on_event: start(details.execution_id, on_event),
        known,
    )


def _progress(console: Console, as_json: bool, launch: _Launch) -> Progress:
    if as_json:
        return NullProgress()
    if console.is_terminal:
        return LiveProgress(console, launch.node_ids, launch.title, known=launch.known)
    return PlainProgress(console)


def _print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    err = stderr_console()
    for diagnostic in diagnostics:
        style = "bold red" if diagnostic.severity == "error" else "bold yellow"
        err.print(Text.assemble((f"{diagnostic.severity}: ", style), diagnostic.render()))


@contextmanager
def _history(db: str | None) -> Iterator[RunHistory]:
    """The history of the ``--db`` store, read through a host that runs nothing (and so
    needs no node types: installed plug-ins are not imported to read the history)."""
    with Host(HostConfig(db=db), catalog=Catalog()) as host:
        yield host.history
