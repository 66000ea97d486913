"""The ASGI application: routes, errors as problems, auth, body limit, and the background duties
(durable runs, schedules) that live as long as it does."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .._errors import PolyhostError
from .._version import __version__
from ..api import API_PREFIX
from ..events._redaction import remember
from ..events._result import RunResult
from ..host._durable import OnRunError
from ..host._host import Host
from ..host._triggers import Scheduler, StartRun
from . import _runs, _workflows
from ._auth import BearerAuth
from ._body import BodyLimit
from ._console import install_console
from ._docs import request_schemas
from ._hub import EventHub
from ._launcher import Launcher
from ._problems import ApiError, problem_response
from ._settings import ServerSettings
from ._state import ServerState

__all__ = ["create_app"]

_log = logging.getLogger("polyhost.server")


def create_app(
    host: Host,
    settings: ServerSettings | None = None,
    *,
    on_result: Callable[[RunResult], None] | None = None,
    on_error: OnRunError | None = None,
) -> FastAPI:
    """The server's application for ``host``: serve it with any ASGI server (``polyhost serve``
    uses uvicorn). Its lifespan starts and stops the host's durable duties (``on_result`` and
    ``on_error`` hear of the runs they end or cannot take over) and schedules; the host itself
    is the caller's to close."""
    settings = settings or ServerSettings()
    # A token is a secret: logs and every answer mask it like an allowed variable's value.
    remember(settings.tokens)
    state = ServerState(host=host, settings=settings, hub=EventHub(settings.stream_buffer_events))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        remove = host.add_event_listener(state.hub)
        scheduler = Scheduler(
            host.deployments, _scheduled_start(state), every=settings.schedule_every
        )
        try:
            async with anyio.create_task_group() as tasks:
                state.launcher = Launcher(host, tasks)
                if settings.workflows_dir is not None:
                    await _deploy_folder(host, settings)
                if host.store is not None:
                    tasks.start_soon(_serve_durable, host, settings, on_result, on_error)
                    tasks.start_soon(_watch_store, state)
                    tasks.start_soon(scheduler.run)
                try:
                    yield
                finally:
                    begin_shutdown(state)
                    scheduler.stop()
        finally:
            remove()

    app = FastAPI(
        title="polyhost",
        version=__version__,
        summary="Run, watch and trigger polyhost workflows",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.polyhost = state
    for router in (_workflows.service, _workflows.router, _runs.router, _workflows.hooks):
        app.include_router(router, prefix=API_PREFIX)
    _install_errors(app)
    install_console(app)  # last: its catch-all must not shadow an API route
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(BearerAuth, tokens=settings.tokens)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def begin_shutdown(state: ServerState) -> None:
    """Stop what keeps connections open: streams end with a comment, the host's runs are
    handed on (released in the store for another host to take over)."""
    if state.closing:
        return
    state.closing = True
    state.hub.wake_all()
    state.host.stop_serving()


async def _serve_durable(
    host: Host,
    settings: ServerSettings,
    on_result: Callable[[RunResult], None] | None,
    on_error: OnRunError | None,
) -> None:
    await host.serve(
        poll_every=settings.poll_every, on_result=on_result or _report, on_error=on_error
    )


async def _watch_store(state: ServerState) -> None:
    """Wake the streams of runs executing on other hosts when the store changes."""
    store = state.host.store
    assert store is not None
    last: object = None
    while not state.closing:
        await anyio.sleep(state.settings.watch_seconds)
        if not state.hub.watching_remote:
            last = None
            continue
        try:
            mark = store.change_mark()
        except Exception:  # a store that cannot say: the streams' own polls still run
            _log.exception("cannot read the store's change mark")
            return
        if mark != last:
            last = mark
            state.hub.wake_remote()


def _report(result: RunResult) -> None:
    _log.info("run %s (%s): %s", result.execution_id, result.workflow_id, result.status.value)


def _scheduled_start(state: ServerState) -> StartRun:
    async def start(
        workflow_id: str, version: int, inputs: dict[str, Any], *, trigger: str = "schedule"
    ) -> str | None:
        deployments = state.host.deployments
        deployment, compiled = await state.read(deployments.resolve, workflow_id, version)
        started = await _runs.start_run(
            state, compiled, inputs, trigger=trigger, workflow_version=deployment.version
        )
        return started.run_id

    return start


async def _deploy_folder(host: Host, settings: ServerSettings) -> None:
    assert settings.workflows_dir is not None
    report = await anyio.to_thread.run_sync(host.deployments.deploy_folder, settings.workflows_dir)
    for line in report.lines():
        _log.info("%s", line)


def _install_errors(app: FastAPI) -> None:
    async def polyhost_error(_: Request, exc: Exception) -> Response:
        return problem_response(exc)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(ApiError(exc.status_code, str(exc.detail), code=code))

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        message = f"{where}: {first.get('msg', 'invalid')}"
        return problem_response(ApiError(400, message, code="malformed_request", field=where))

    async def internal_error(_: Request, exc: Exception) -> Response:
        return problem_response(exc)

    app.add_exception_handler(PolyhostError, polyhost_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(request_schemas())
        app.openapi_schema = document
    return app.openapi_schema
