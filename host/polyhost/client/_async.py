"""The asynchronous client of a polyhost server's HTTP API (asyncio or trio, through anyio)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import anyio
import httpx

from ..api import (
    CompileResponse,
    Deployed,
    EventModel,
    Health,
    NodeTypeModel,
    RunAccepted,
    RunList,
    RunSummaryModel,
    WebhookAccepted,
    WorkflowDetail,
    WorkflowSummary,
)
from ..events._result import RunResult, RunStatus
from . import _calls as calls
from ._calls import Document, Wait
from ._errors import ConnectionFailedError, WaitTimeoutError, shown_url
from ._reconnect import StreamCursor
from ._wire import (
    DEFAULT_STREAM_IDLE_TIMEOUT,
    DEFAULT_STREAM_RETRIES,
    DEFAULT_TIMEOUT,
    POLL_FIRST,
    POLL_MAX,
    Call,
    api_base,
    auth_headers,
    segment,
    transport_reason,
)

__all__ = ["AsyncClient", "AsyncEventStream"]

T = TypeVar("T")


class AsyncEventStream:
    """A run's events as they happen, as an async iterator; an async context manager that
    closes the connection when left (or call :meth:`aclose`)."""

    def __init__(self, events: AsyncGenerator[EventModel, None]) -> None:
        self._events = events

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> EventModel:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop following the run and close the connection (idempotent)."""
        await self._events.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncClient:
    """An asynchronous client of a polyhost server: ``AsyncClient("http://127.0.0.1:8700")``,
    with the methods of :class:`Client`, awaited.

    ``token`` (default: ``$POLYHOST_API_TOKEN``) is sent as ``Authorization: Bearer`` and
    appears in no message or repr. ``timeout`` bounds each request (a run started with
    ``wait`` adds its wait). An event stream reconnects after a dropped connection up to
    ``stream_retries`` attempts in a row that deliver nothing, and takes a connection silent
    for ``stream_idle_timeout`` seconds for dropped. ``transport`` replaces httpx's own (a
    proxy, a mounted test app). Errors: :class:`ServerError` for an error answer,
    :class:`ConnectionFailedError` when the server cannot be reached.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        stream_retries: int = DEFAULT_STREAM_RETRIES,
        stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = api_base(base_url)
        self.timeout = timeout
        self.stream_retries = stream_retries
        self.stream_idle_timeout = stream_idle_timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=auth_headers(token),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"AsyncClient({shown_url(self.base_url)!r})"

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def health(self) -> Health:
        """The server's liveness and version (needs no token)."""
        return await self._send(calls.health())

    async def nodes(self) -> list[NodeTypeModel]:
        """The server's node-type catalog."""
        return await self._send(calls.nodes())

    async def compile(self, workflow: Document) -> CompileResponse:
        """Check a workflow document (an object, or YAML/JSON text) without running it."""
        return await self._send(calls.compile_workflow(workflow))

    async def deploy(self, workflow_id: str, document: Document) -> Deployed:
        """Deploy a document as the next version of ``workflow_id`` (an unchanged one keeps
        its version: ``created`` is then false)."""
        return await self._send(calls.deploy(workflow_id, document))

    async def workflows(self) -> list[WorkflowSummary]:
        """The deployed workflows."""
        return await self._send(calls.workflows())

    async def workflow(self, workflow_id: str) -> WorkflowDetail:
        """One deployed workflow with its document, versions and triggers."""
        return await self._send(calls.workflow(workflow_id))

    async def undeploy(self, workflow_id: str) -> None:
        """Undeploy a workflow: its triggers stop, its history is kept."""
        await self._send(calls.undeploy(workflow_id))

    @overload
    async def start(
        self,
        workflow_id: str,
        inputs: dict[str, Any] | None = None,
        wait: Literal[False] = False,
        version: int | None = None,
    ) -> RunAccepted: ...

    @overload
    async def start(
        self,
        workflow_id: str,
        inputs: dict[str, Any] | None = None,
        wait: Wait = False,
        version: int | None = None,
    ) -> RunAccepted | RunResult: ...

    async def start(
        self,
        workflow_id: str,
        inputs: dict[str, Any] | None = None,
        wait: Wait = False,
        version: int | None = None,
    ) -> RunAccepted | RunResult:
        """Start a run of a deployed workflow (its latest version, or ``version``).

        With ``wait`` (seconds), the result when the run ends or pauses in time, else (and
        without ``wait``) the run's id and status.
        """
        return await self._send(calls.start(workflow_id, inputs, wait, version))

    @overload
    async def run(
        self,
        document: Document,
        inputs: dict[str, Any] | None = None,
        wait: Literal[False] = False,
    ) -> RunAccepted: ...

    @overload
    async def run(
        self, document: Document, inputs: dict[str, Any] | None = None, wait: Wait = False
    ) -> RunAccepted | RunResult: ...

    async def run(
        self, document: Document, inputs: dict[str, Any] | None = None, wait: Wait = False
    ) -> RunAccepted | RunResult:
        """Run a workflow document that is not deployed (an ad-hoc run); ``wait`` as in
        :meth:`start`."""
        return await self._send(calls.adhoc_run(document, inputs, wait))

    async def runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RunList:
        """A page of the history, newest first; ``next_cursor`` asks for the next page."""
        return await self._send(calls.runs(workflow, status, limit, cursor))

    async def run_result(self, run_id: str) -> RunResult:
        """A run's result (an id prefix works when unique)."""
        return await self._send(calls.run_result(run_id))

    async def events(
        self, run_id: str, after: int = 0, limit: int | None = None
    ) -> list[EventModel]:
        """A run's stored events after sequence number ``after``."""
        return await self._send(calls.events(run_id, after, limit))

    def stream(self, run_id: str, after: int = 0) -> AsyncEventStream:
        """A run's events after ``after``: the stored ones, then live ones as they happen,
        each once, in order, across dropped connections; it ends after the event that ends
        the run (a pause does not end it)."""
        return AsyncEventStream(self._follow(run_id, after))

    async def resume(self, run_id: str, inputs: dict[str, Any] | None = None) -> RunSummaryModel:
        """Continue a paused run with ``inputs`` (what it waits for), or one whose host died."""
        return await self._send(calls.resume(run_id, inputs))

    async def cancel(self, run_id: str) -> RunSummaryModel:
        """Cancel a run wherever it executes; a paused run is cancelled at once."""
        return await self._send(calls.cancel(run_id))

    async def retry(self, run_id: str) -> RunSummaryModel:
        """Continue a failed run from its failed nodes, keeping what completed."""
        return await self._send(calls.retry(run_id))

    async def rerun(self, run_id: str) -> RunSummaryModel:
        """Run a stored run again from the start, as a new run (its summary is returned)."""
        return await self._send(calls.rerun(run_id))

    async def hook(
        self, name: str, body: Any = None, signature_secret: str | bytes | None = None
    ) -> WebhookAccepted:
        """Call the webhook trigger ``name`` with ``body`` (JSON, or bytes as they are),
        signed with ``signature_secret`` when the trigger has a ``secret_env``."""
        return await self._send(calls.hook(name, body, signature_secret))

    async def wait(self, run_id: str, timeout: float | None = None) -> RunResult:
        """The run's result once it has ended or paused; :class:`WaitTimeoutError` after
        ``timeout`` seconds (``None``: no limit)."""
        began = time.monotonic()
        delay = POLL_FIRST
        while True:
            result = await self.run_result(run_id)
            if result.status.is_final or result.status is RunStatus.PAUSED:
                return result
            if timeout is not None:
                left = began + timeout - time.monotonic()
                if left <= 0:
                    raise WaitTimeoutError(run_id, timeout, result.status.value)
                delay = min(delay, left)
            await anyio.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    async def _send(self, call: Call[T]) -> T:
        timeout = httpx.Timeout(self.timeout, read=self.timeout + call.hold)
        try:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                content=call.body,
                headers=call.headers,
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise ConnectionFailedError(self.base_url, transport_reason(exc)) from exc
        return call.decode(response)

    async def _follow(self, run_id: str, after: int) -> AsyncGenerator[EventModel, None]:
        path = f"runs/{segment(run_id)}/stream"
        cursor = StreamCursor(f"{self.base_url}/{path}", run_id, after, self.stream_retries)
        timeout = httpx.Timeout(self.timeout, read=self.stream_idle_timeout)
        while True:
            try:
                async with self._http.stream(
                    "GET", path, params=cursor.params(), headers=cursor.headers(), timeout=timeout
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        cursor.refused(response)
                    else:
                        decoder = cursor.opened(response)
                        async for chunk in response.aiter_bytes():
                            for event in cursor.take(decoder, decoder.feed(chunk)):
                                yield event
                            if cursor.finished:
                                return
            except httpx.TransportError as exc:
                cursor.broke(exc)
            if cursor.needs_status and await self._has_ended(run_id):
                return
            await anyio.sleep(cursor.next_delay())

    async def _has_ended(self, run_id: str) -> bool:
        try:
            return (await self.run_result(run_id)).status.is_final
        except ConnectionFailedError:
            return False  # the next attempt finds out more
