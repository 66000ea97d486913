"""The bodies of the commands; each returns the exit status."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from .._catalog import Catalog
from .._diagnostics import Diagnostic
from .._errors import ManifestError, RunStateError, WorkflowLoadError
from .._host import Host, HostConfig
from .._result import RunResult, RunStatus
from ..store import RunStore, RunSummary, default_home, open_store
from ._guard import EXIT_INVALID, EXIT_OK, exit_status, interrupt_cancels, run_async
from ._inputs import parse_inputs
from ._progress import LiveProgress, NullProgress, PlainProgress, Progress
from ._render import (
    event_line,
    print_json,
    run_details,
    run_summary,
    runs_table,
    stderr_console,
    stdout_console,
)

__all__ = [
    "catalog",
    "compile_workflow",
    "list_runs",
    "rerun",
    "run_workflow",
    "show_events",
    "show_run",
]


def run_workflow(
    file: Path,
    pairs: list[str],
    *,
    inputs_file: Path | None,
    nodes: Path | None,
    as_json: bool,
    db: str | None,
) -> int:
    """``polyhost run``."""
    inputs = parse_inputs(pairs, inputs_file)
    console = stdout_console()

    async def main() -> RunResult:
        async with Host(HostConfig(home=default_home(), db=db)) as host:
            workflow = host.load(file, nodes)
            compiled = host.compile(workflow)
            _print_diagnostics(compiled.warnings)
            progress = _progress(
                console, as_json, [n.id for n in workflow.nodes], compiled.workflow_id
            )
            with progress, interrupt_cancels(host):
                # The model, not the plan: the host then records the manifests it came with,
                # which `runs rerun` needs to find the same node types.
                return await host.run(
                    workflow, inputs, on_event=progress.on_event, source=str(file.resolve())
                )

    return _finish(run_async(main), as_json, console)


def rerun(run_id: str, as_json: bool, db: str | None) -> int:
    """``polyhost runs rerun``."""
    console = stdout_console()

    async def main() -> RunResult:
        async with Host(HostConfig(home=default_home(), db=db)) as host:
            store = _store_of(host)
            record = store.get_record(run_id)
            node_ids = [
                str(node["id"])
                for node in record.document.get("nodes") or []
                if isinstance(node, dict) and "id" in node
            ]
            progress = _progress(console, as_json, node_ids, record.workflow_id)
            with progress, interrupt_cancels(host):
                return await host.rerun(record.run_id, on_event=progress.on_event)

    return _finish(run_async(main), as_json, console)


def compile_workflow(file: Path, nodes: Path | None, as_json: bool) -> int:
    """``polyhost compile``: diagnostics only; warnings never change the exit status."""
    with Host(HostConfig(home=default_home()), store=None) as host:
        try:
            workflow = host.load(file, nodes)
        except (WorkflowLoadError, ManifestError) as exc:
            diagnostics = [Diagnostic("error", exc.code, exc.message)]
        else:
            diagnostics = host.check(workflow)
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
    with Host(HostConfig(home=default_home()), store=None) as host:
        if nodes is not None:
            host.catalog.load_manifest(nodes)
        return host.catalog


def list_runs(
    limit: int, status: RunStatus | None, workflow: str | None, as_json: bool, db: str | None
) -> int:
    """``polyhost runs list``."""
    with open_store(db, default_home()) as store:
        runs = store.list_runs(limit=limit, status=status, workflow_id=workflow)
    if as_json:
        print_json([_summary_dict(run) for run in runs])
    elif not runs:
        filtered = status is not None or workflow is not None
        stdout_console().print("no matching runs" if filtered else "no runs yet")
    else:
        stdout_console().print(runs_table(runs))
    return EXIT_OK


def show_run(run_id: str, as_json: bool, db: str | None) -> int:
    """``polyhost runs show``; ``--json`` prints the object ``run --json`` prints."""
    with open_store(db, default_home()) as store:
        result = store.get_result(run_id)
        if as_json:
            print_json(result.to_dict())
            return EXIT_OK
        record = store.get_record(result.execution_id)
        count = len(store.events(result.execution_id))
    stdout_console().print(run_details(result, record, count))
    return EXIT_OK


def show_events(run_id: str, as_json: bool, db: str | None) -> int:
    """``polyhost runs events``: the event log in sequence order."""
    with open_store(db, default_home()) as store:
        events = store.events(run_id)
    if as_json:
        print_json([event.to_dict() for event in events])
        return EXIT_OK
    console = stdout_console()
    start = events[0].ts if events else 0.0
    for event in events:
        console.print(event_line(event, start))
    return EXIT_OK


def _finish(result: RunResult, as_json: bool, console: Console) -> int:
    # Printed only once the host is closed: a failure while closing must not follow a
    # printed result (stdout holds exactly one JSON object).
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(run_summary(result))
    return exit_status(result.status)


def _progress(console: Console, as_json: bool, node_ids: list[str], title: str) -> Progress:
    if as_json:
        return NullProgress()
    if console.is_terminal:
        return LiveProgress(console, node_ids, title)
    return PlainProgress(console)


def _print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    err = stderr_console()
    for diagnostic in diagnostics:
        style = "bold red" if diagnostic.severity == "error" else "bold yellow"
        err.print(Text(f"{diagnostic.severity}: ", style=style) + Text(diagnostic.render()))


def _store_of(host: Host) -> RunStore:
    if host.store is None:
        raise RunStateError("this host keeps no history")
    return host.store


def _summary_dict(run: RunSummary) -> dict[str, Any]:
    return {
        "execution_id": run.run_id,
        "workflow_id": run.workflow_id,
        "status": run.status.value,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "error": run.error,
        "nodes": run.counts,
    }
