"""The run endpoints: start, list, show, events, stream, resume, cancel, retry, rerun."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..api import (
    AdhocRunRequest,
    EventList,
    ResumeRequest,
    RunAccepted,
    RunList,
    RunRecordModel,
    RunResultModel,
    RunSummaryModel,
)
from ..compile._compiled import CompiledWorkflow
from ..events._events import Event
from ..events._result import RunResult, RunStatus
from ._body import read_model
from ._docs import answers, body_of
from ._launcher import Started
from ._problems import ApiError
from ._state import ServerState, state_of
from ._stream import event_stream

__all__ = ["router", "start_run", "summary_of"]

router = APIRouter(prefix="/runs", tags=["runs"])

_MAX_WAIT = 3600.0


async def start_run(
    state: ServerState,
    compiled: CompiledWorkflow,
    inputs: dict[str, Any],
    *,
    trigger: str,
    workflow_version: int | None = None,
    source: str | None = None,
) -> Started:
    """Start a run of ``compiled`` in the background; ``InputError`` before it starts."""
    host = state.host
    # Refused here, as a 422, rather than as a failed run.
    compiled.inputs.prepare(inputs, host.config.limits)

    async def drive(on_event: Callable[[Event], None]) -> RunResult:
        return await host.run(
            compiled,
            inputs,
            on_event=on_event,
            source=source,
            trigger=trigger,
            workflow_version=workflow_version,
        )

    return await state.require_launcher().start(drive)


async def answer_started(state: ServerState, started: Started, wait: float | bool) -> Response:
    """202 with the run's id, or with ``wait``, 200 and its result once it ends or pauses."""
    settled = wait is not False and wait > 0 and await started.wait(min(float(wait), _MAX_WAIT))
    # Once a run has ended its records are committed already: this costs nothing then.
    await state.require_launcher().recorded()
    if settled:
        if started.result is not None:
            return JSONResponse(started.result.to_dict())
        return JSONResponse((await state.result(started.run_id)).to_dict())
    accepted = RunAccepted(execution_id=started.run_id, status=started.status)
    return JSONResponse(accepted.model_dump(), status_code=202)


async def summary_of(state: ServerState, run_id: str) -> RunSummaryModel:
    """One run's summary, read from the store."""
    history = state.host.history
    details = await state.read(history.details, run_id)
    result = await state.read(history.result, details.execution_id)
    status = result.status
    ended = None
    if status.is_final and details.started_at:
        ended = details.started_at + result.duration_ms / 1000
    return RunSummaryModel(
        execution_id=details.execution_id,
        workflow_id=details.workflow_id,
        workflow_version=getattr(details, "workflow_version", None),
        status=status.value,
        trigger=getattr(details, "trigger", None) or "manual",
        started_at=details.started_at,
        ended_at=ended,
        duration_ms=result.duration_ms if status.is_final else None,
    )


@router.post(
    "",
    status_code=202,
    openapi_extra=body_of(AdhocRunRequest),
    responses=answers(RunResultModel, more={202: RunAccepted}),
    summary="Start an ad-hoc run of the workflow in the body",
)
async def create_run(request: Request) -> Response:
    state = state_of(request)
    body = await read_model(request, state.host, AdhocRunRequest)
    host = state.host
    if isinstance(body.workflow, str):
        workflow = host.parse(body.workflow, source="workflow", json=False)
    else:
        workflow = host.parse(body.workflow, source="workflow")
    compiled = host.compile(workflow)
    started = await start_run(state, compiled, body.inputs, trigger="api")
    return await answer_started(state, started, body.wait)


@router.get("", response_model=RunList, summary="The history, newest first")
async def list_runs(
    request: Request,
    workflow: str | None = None,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Response:
    state = state_of(request)
    page = await state.read(
        state.host.history.list, status=status, workflow_id=workflow, limit=limit, cursor=cursor
    )
    runs = [_summary_from_overview(run.to_dict()) for run in page.runs]
    return JSONResponse({"runs": runs, "next_cursor": page.next_cursor})


def _summary_from_overview(row: dict[str, Any]) -> dict[str, Any]:
    row.setdefault("ended_at", row.get("finished_at"))
    row.setdefault("trigger", "manual")
    row.setdefault("workflow_version", None)
    return row


@router.get("/{run_id}", responses=answers(RunResultModel))
async def get_run(request: Request, run_id: str) -> Response:
    """One run's result (an id prefix works when it is unique)."""
    state = state_of(request)
    return JSONResponse((await state.result(run_id)).to_dict())


@router.get("/{run_id}/events", response_model=EventList)
async def get_events(
    request: Request,
    run_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    """Stored events after ``after``, in sequence order."""
    state = state_of(request)
    page = await state.read(state.host.history.events, run_id, after_seq=after, limit=limit)
    return JSONResponse({"events": [event.to_dict() for event in page.events]})


@router.get(
    "/{run_id}/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream_run(
    request: Request,
    run_id: str,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The run's events as server-sent events: replayed after ``Last-Event-ID`` (or
    ``?after=``), then live; closes after the event that ends the run."""
    state = state_of(request)
    full_id = await state.read(state.host.history.resolve, run_id)
    start = after or 0
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise ApiError(
                400,
                "Last-Event-ID must be a sequence number",
                code="malformed_request",
                field="Last-Event-ID",
            )
        start = max(start, int(last_event_id.strip()))
    settings = state.settings
    body = event_stream(
        state.host,
        state.hub,
        full_id,
        start,
        heartbeat=settings.heartbeat_seconds,
        poll=settings.poll_seconds,
        closing=lambda: state.closing,
    )
    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.post(
    "/{run_id}/resume",
    openapi_extra=body_of(ResumeRequest),
    responses=answers(RunSummaryModel),
)
async def resume_run(request: Request, run_id: str) -> Response:
    """Resume a paused run; the inputs are checked against the pause's schema first."""
    state = state_of(request)
    body = await read_model(request, state.host, ResumeRequest)
    full_id = await state.read(state.host.history.resolve, run_id)
    host = state.host

    async def drive(on_event: Callable[[Event], None]) -> RunResult:
        return await host.resume(full_id, body.inputs, on_event=on_event)

    launcher = state.require_launcher()
    await launcher.start(drive)
    await launcher.recorded()
    return JSONResponse((await summary_of(state, full_id)).model_dump())


@router.post("/{run_id}/cancel", responses=answers(RunSummaryModel))
async def cancel_run(request: Request, run_id: str) -> Response:
    """Cancel the run wherever it executes (a paused run at once)."""
    state = state_of(request)
    full_id = await state.read(state.host.history.resolve, run_id)
    await state.host.cancel_run(full_id)
    return JSONResponse((await summary_of(state, full_id)).model_dump())


@router.post("/{run_id}/retry", responses=answers(RunSummaryModel))
async def retry_run(request: Request, run_id: str) -> Response:
    """Continue a failed run from the nodes that failed."""
    state = state_of(request)
    full_id = await state.read(state.host.history.resolve, run_id)
    host = state.host

    async def drive(on_event: Callable[[Event], None]) -> RunResult:
        return await host.retry(full_id, on_event=on_event)

    launcher = state.require_launcher()
    await launcher.start(drive)
    await launcher.recorded()
    return JSONResponse((await summary_of(state, full_id)).model_dump())


@router.post(
    "/{run_id}/rerun", status_code=201, responses=answers(None, more={201: RunSummaryModel})
)
async def rerun_run(request: Request, run_id: str) -> Response:
    """Start the run afresh (same document and inputs) as a new run."""
    state = state_of(request)
    full_id = await state.read(state.host.history.resolve, run_id)
    host = state.host

    async def drive(on_event: Callable[[Event], None]) -> RunResult:
        return await host.rerun(full_id, on_event=on_event)

    launcher = state.require_launcher()
    started = await launcher.start(drive)
    await launcher.recorded()
    summary = await summary_of(state, started.run_id)
    return JSONResponse(summary.model_dump(), status_code=201)


@router.get("/{run_id}/record", responses=answers(RunRecordModel))
async def get_record(request: Request, run_id: str) -> Response:
    """What the run started with: its document, inputs, source, manifests, workflow version
    and trigger (the console draws the run's graph from the document)."""
    state = state_of(request)
    full_id = await state.read(state.host.history.resolve, run_id)
    return JSONResponse((await state.read(state.host.history.details, full_id)).to_dict())
