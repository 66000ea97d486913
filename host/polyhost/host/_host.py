"""The Host: what an app embeds to compile and run workflows (catalog, store, runtimes).

Its settings are ``._config.HostConfig``; its durable lifecycle (resume, retry, cancel, serve,
takeover) is ``._durable.DurableRuns``, which it composes."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.to_thread

from .._errors import CompileError, InputError, RunStateError
from ..compile._checker import compile_workflow
from ..compile._compiled import CompiledWorkflow
from ..compile._loading import MANIFEST_NAME, load_workflow, parse_bytes
from ..compile._parsing import parse_workflow
from ..engine._engine import EngineSettings, Execution
from ..engine._limiter import NodeSlots
from ..events._events import Event
from ..events._redaction import allowed_env
from ..events._result import RUN_TRIGGERS, RunResult, RunStatus
from ..router._router import RuntimeRouter
from ..runtimes import RuntimeSetup
from ..store import RunRecord, RunStore, open_store
from ..store._base import Owner
from ..workflow._catalog import Catalog
from ..workflow._diagnostics import Diagnostic
from ..workflow._imports import backend_options
from ..workflow._model import Workflow
from ._config import HostConfig
from ._deployments import Deployments
from ._durable import DurableRuns, OnRunError
from ._history import RunHistory, manifest_paths

__all__ = ["Host", "new_run_id"]

Target = CompiledWorkflow | Workflow | str | Path
_DEFAULT: Any = object()


def new_run_id() -> str:
    """A new run id: time-ordered (sorts by start), with 48 random bits."""
    return f"{time.time_ns() // 1_000_000:011x}{secrets.token_hex(6)}"


class Host:
    """Compiles and runs workflows.

    >>> async with Host() as host:
    ...     result = await host.run("flow.yaml", {"name": "world"})

    ``store=None`` runs without history (nothing is written); by default runs are kept in the
    SQLite database under ``config.home``.
    """

    def __init__(
        self,
        config: HostConfig | None = None,
        *,
        catalog: Catalog | None = None,
        store: RunStore | None = _DEFAULT,
        router: RuntimeRouter | None = None,
    ) -> None:
        self.config = config or HostConfig()
        if catalog is None:
            catalog = Catalog.with_builtins()
            catalog.load_entry_points()
        self.catalog = catalog
        self.catalog.add_defaults(self.config.node_defaults)
        self.store: RunStore | None = (
            open_store(self.config.db, self.config.home) if store is _DEFAULT else store
        )
        self.router = router or RuntimeRouter()
        # Every runtime this host can have (built-in or a plug-in's) that the router given
        # lacks is built by its plug-in; the grpc one then discovers sidecars' node types.
        self.router.install(
            RuntimeSetup(
                catalog=self.catalog,
                limits=self.config.limits,
                home=self.config.home,
                allowed_roots=tuple(self.config.allowed_roots),
                max_output_bytes=self.config.max_output_bytes,
                process_workers=self.config.process_workers,
                cache=self.config.wasm_cache,
            )
        )
        self._limiter: NodeSlots | None = None
        self._active: dict[str, Execution] = {}
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self._closed = False
        # Known as secrets from the start: a sidecar's log may show them before any run does.
        allowed_env(self.config.env_allow)
        self.owner = Owner(host_id=new_run_id(), hostname=socket.gethostname(), pid=os.getpid())
        # Resume, retry, cancel, serve: the runs the store keeps (see ._durable).
        self._durable = DurableRuns(self)
        self._deployments: Deployments | None = None

    @property
    def history(self) -> RunHistory:
        """The runs this host's store keeps, read only: list (filters, cursor), one run's
        result, record and events, id prefixes. What the CLI and a server show comes from here.
        """
        return RunHistory(self.store)

    @property
    def deployments(self) -> Deployments:
        """The workflows deployed to this host's store: deploy, list, read, undeploy, their
        compiled plans and their triggers (see ``._deployments``)."""
        if self._deployments is None:
            self._deployments = Deployments(self)
        return self._deployments

    # loading and compiling -----------------------------------------------------------------

    def load(self, path: str | Path, nodes: str | Path | None = None) -> Workflow:
        """Read a workflow file, and the manifests beside it and at ``nodes``, into the catalog."""
        path = Path(path)
        beside = path.parent / MANIFEST_NAME
        loaded = []
        for manifest in (beside if beside.is_file() else None, nodes):
            if manifest is not None:
                self.catalog.load_manifest(manifest)
                loaded.append(str(Path(manifest).resolve()))
        workflow = load_workflow(
            path,
            limits=self.config.limits,
            catalog=self.catalog,
            runtimes=self.router,
        )
        if loaded:
            # The manifests travel with the workflow (into its plan and its runs' records).
            workflow._manifests = tuple(loaded)
        return workflow

    def parse(
        self,
        document: dict[str, Any] | str | bytes,
        *,
        default_id: str | None = None,
        source: str = "document",
        json: bool = False,
    ) -> Workflow:
        """A workflow from a document given as an object or as YAML/JSON text (``json``:
        parse text as JSON; YAML otherwise), within the document limits. ``CompileError`` lists
        every problem, naming the node and field; ``WorkflowLoadError`` for text that does not
        parse (``source`` names it in the message).
        """
        limits = self.config.limits
        checked = None
        if isinstance(document, str | bytes):
            data = (
                document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
            )
            document, checked = parse_bytes(data, source, limits, json=json)
        return parse_workflow(
            document,
            default_id=default_id,
            limits=limits,
            catalog=self.catalog,
            runtimes=self.router,
            checked=checked,
        )

    async def _load_manifests(self, paths: tuple[str, ...]) -> None:
        """Load a stored run's manifests again, off the loop (loading one may start sidecars)."""

        def load() -> None:
            for manifest in paths:
                if Path(manifest).is_file():
                    self.catalog.load_manifest(manifest)

        await anyio.to_thread.run_sync(load)

    def check(self, workflow: Workflow) -> list[Diagnostic]:
        """Every diagnostic for ``workflow`` (errors and warnings); never raises for bad input."""
        try:
            compiled = self.compile(workflow)
        except CompileError as exc:
            return list(exc.diagnostics)
        return list(compiled.warnings)

    def compile(self, workflow: Workflow) -> CompiledWorkflow:
        """The immutable plan of ``workflow``; ``CompileError`` carries every diagnostic.

        The plan keeps the manifests the workflow was loaded with (``Host.load``), so that
        running it records them for a later rerun or resume.
        """
        compiled = compile_workflow(
            workflow, self.catalog, runtimes=self.router, limits=self.config.limits
        )
        return _with_manifests(compiled, workflow.manifests)

    # running -------------------------------------------------------------------------------

    async def run(
        self,
        target: Target,
        inputs: dict[str, Any] | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
        source: str | None = None,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        trigger: str = "manual",
        workflow_version: int | None = None,
    ) -> RunResult:
        """Run a workflow (a path, a model or a compiled plan) and return its result.

        ``trigger`` (one of ``RUN_TRIGGERS``: manual, api, webhook, schedule, ...) and
        ``workflow_version`` (of a deployed workflow) are recorded with the run, for the
        history to show where it came from.

        Raises ``CompileError`` for an invalid workflow and ``InputError`` for bad inputs (or
        an unknown ``trigger``); a failing node never raises here, it gives a result with
        status ``failed``.
        """
        if self._closed:
            raise RunStateError("the host is closed")
        if trigger not in RUN_TRIGGERS:
            known = ", ".join(RUN_TRIGGERS)
            raise InputError(f"no run trigger {trigger!r} (one of {known})", field="trigger")
        if isinstance(target, str | Path):
            source = source or str(Path(target).resolve())
            # Loading a manifest may start sidecars to ask for their node types: off the loop.
            target = await anyio.to_thread.run_sync(self.load, target)
        # Compiled once per run: a plan given here (the CLI's, say) is not compiled again.
        compiled = self.compile(target) if isinstance(target, Workflow) else target
        prepared = compiled.inputs.prepare(inputs, self.config.limits)
        run_id = run_id or new_run_id()
        record = RunRecord(
            run_id=run_id,
            workflow_id=compiled.workflow_id,
            status=RunStatus.RUNNING,
            inputs=prepared,
            document=compiled.recorded_document(),
            source=source,
            manifest=os.pathsep.join(compiled.manifests) or None,
            started_at=time.time(),
            parent_run_id=parent_run_id,
            owner=self.owner,
            lease_seconds=self.config.lease_seconds,
            workflow_version=workflow_version,
            trigger=trigger,
        )
        execution = Execution(
            compiled,
            prepared,
            run_id=run_id,
            router=self.router,
            limiter=self._capacity(),
            store=self.store,
            subscribers=[on_event] if on_event is not None else None,
            settings=self._settings(),
            record=record,
            owner=self.owner,
        )
        return await self._execute(execution)

    async def _execute(self, execution: Execution) -> RunResult:
        self._active[execution.run_id] = execution
        try:
            return await execution.execute()
        finally:
            self._active.pop(execution.run_id, None)

    # durable runs --------------------------------------------------------------------------

    async def resume(
        self,
        run_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
    ) -> RunResult:
        """Continue a paused run, or a run whose host died, in this process.

        ``inputs`` answers a ``core.approval`` (checked against its ``schema``: ``InputError``)
        or reaches a handler's own pause as ``ctx.resume_input``. Nodes that completed are not
        run again; a node that was in flight runs again with the same ``idempotency_key``.
        Raises ``RunStateError`` for a finished run or one a live host owns.
        """
        return await self._durable.resume(run_id, inputs, on_event=on_event)

    async def retry(
        self, run_id: str, *, on_event: Callable[[Event], None] | None = None
    ) -> RunResult:
        """Continue a failed run from the nodes that failed, keeping every completed output."""
        return await self._durable.retry(run_id, on_event=on_event)

    async def cancel_run(self, run_id: str) -> RunStatus:
        """Cancel a run wherever it executes; a paused run is cancelled at once.

        Returns ``running`` when the request went to the host executing it (which stops it
        within ``renew_every`` seconds) and ``cancelled`` when it is already done.
        """
        return await self._durable.cancel_run(run_id)

    async def resume_due(
        self,
        *,
        on_result: Callable[[RunResult], None] | None = None,
        on_error: OnRunError | None = None,
    ) -> list[RunResult]:
        """Resume every paused run whose timer is due and every run whose host died.

        A run that cannot be taken over (its record cannot be read, say) is reported to
        ``on_error`` (by default, logged) and the others go on; one that fails after it was
        taken over ends failed, with the error, like any run.
        """
        return await self._durable.resume_due(on_result=on_result, on_error=on_error)

    async def serve(
        self,
        *,
        poll_every: float = 1.0,
        on_result: Callable[[RunResult], None] | None = None,
        on_error: OnRunError | None = None,
    ) -> None:
        """Run until :meth:`stop_serving`, waking due timers and taking over runs whose host
        died (polling the store every ``poll_every`` seconds).

        Nothing one run does stops the loop: a run that cannot be taken over goes to
        ``on_error`` (by default, logged), and so does a poll that cannot read the store.
        """
        await self._durable.serve(poll_every=poll_every, on_result=on_result, on_error=on_error)

    def stop_serving(self) -> None:
        """End :meth:`serve`, handing on the runs it executes: they stay running, released in
        the store, so another host takes them over at once."""
        self._durable.stop_serving()

    def run_sync(
        self, target: Target, inputs: dict[str, Any] | None = None, **kwargs: Any
    ) -> RunResult:
        """:meth:`run` for code without an event loop (uses uvloop when installed)."""

        async def main() -> RunResult:
            return await self.run(target, inputs, **kwargs)

        return anyio.run(main, backend_options=backend_options())

    async def stream(
        self, target: Target, inputs: dict[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        """Run a workflow and yield its events as they happen, ending with the run's last."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer_size=float("inf"))
        async with anyio.create_task_group() as tg:

            async def drive() -> None:
                async with send:
                    await self.run(target, inputs, on_event=send.send_nowait)

            tg.start_soon(drive)
            async with receive:
                async for event in receive:
                    yield event

    async def rerun(
        self, run_id: str, *, on_event: Callable[[Event], None] | None = None
    ) -> RunResult:
        """Start the stored run ``run_id`` afresh: same document, same inputs, a new run id
        (trigger ``rerun``, and the same deployed version when the original had one)."""
        store = self._require_store()
        record = await anyio.to_thread.run_sync(store.get_record, run_id)
        manifests = manifest_paths(record.manifest)
        await self._load_manifests(manifests)
        workflow = parse_workflow(record.document, default_id=record.workflow_id)
        # The new run records the same manifests, so it can be re-run in turn.
        compiled = _with_manifests(self.compile(workflow), manifests)
        return await self.run(
            compiled,
            record.inputs,
            on_event=on_event,
            source=record.source,
            parent_run_id=record.run_id,
            trigger="rerun",
            workflow_version=record.workflow_version,
        )

    def cancel(self, run_id: str) -> bool:
        """Cancel a run this host is executing; False when it runs no such run."""
        execution = self._active.get(run_id)
        if execution is None:
            return False
        execution.cancel()
        return True

    def add_event_listener(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` with every event of every run this host executes from now on
        (started, resumed, retried or taken over), on the event loop, in order per run; returns
        a function that removes it. It must not block; one that raises is dropped for the run.
        """
        self._listeners = (*self._listeners, listener)

        def remove() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return remove

    @property
    def active_runs(self) -> list[str]:
        """Ids of the runs this host is executing now."""
        return list(self._active)

    # lifecycle -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Cancel active runs, close the runtimes and the store; idempotent."""
        if self._closed:
            return
        self._closed = True
        for execution in list(self._active.values()):
            execution.cancel()
        await self.router.aclose()
        if self.store is not None:
            await anyio.to_thread.run_sync(self.store.close)

    def close(self) -> None:
        """:meth:`aclose` for code without an event loop."""
        anyio.run(self.aclose)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # internals -----------------------------------------------------------------------------

    def _capacity(self) -> NodeSlots:
        # Created lazily: a limiter belongs to the event loop that first uses it.
        if self._limiter is None:
            self._limiter = NodeSlots(self.config.concurrency)
        return self._limiter

    def _settings(self) -> EngineSettings:
        return EngineSettings(
            max_output_bytes=self.config.max_output_bytes,
            env=self._allowed_env(),
            lease_seconds=self.config.lease_seconds,
            renew_every=self.config.renew_every,
            durable_commits=self.config.durable_commits,
            limits=self.config.limits,
            listeners=self._listeners,
        )

    def _allowed_env(self) -> dict[str, str]:
        # The host's own allow-list and those of the manifests loaded (their `[host] env`).
        return allowed_env([*self.config.env_allow, *self.catalog.env_allow])

    def _require_store(self) -> RunStore:
        if self.store is None:
            raise RunStateError("this host runs without a store, so it keeps no history")
        return self.store


def _with_manifests(compiled: CompiledWorkflow, manifests: tuple[str, ...]) -> CompiledWorkflow:
    if not manifests or compiled.manifests == manifests:
        return compiled
    return replace(compiled, manifests=manifests)
