"""The Host: what an app embeds to compile and run workflows (catalog, store, runtimes)."""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field

from ._catalog import Catalog
from ._compiler import CompiledWorkflow, compile_workflow, parse_workflow
from ._diagnostics import Diagnostic
from ._engine import EngineSettings, Execution, Resumption
from ._errors import CompileError, InputError, PolyhostError, RunStateError
from ._events import Event, EventType
from ._history import RunHistory
from ._imports import backend_options
from ._limiter import NodeSlots
from ._limits import Limits, default_limits
from ._loading import MANIFEST_NAME, load_workflow
from ._model import Workflow
from ._redaction import allowed_env
from ._result import RunResult, RunStatus
from ._router import RuntimeRouter
from ._schema import schema_errors, validator_for
from .runtimes import RuntimeSetup
from .store import RunRecord, RunStore, default_home, open_store
from .store._base import Owner

__all__ = ["Host", "HostConfig", "new_run_id"]

Target = CompiledWorkflow | Workflow | str | Path
OnRunError = Callable[[str, BaseException], None]
_log = logging.getLogger("polyhost")
_DEFAULT: Any = object()
_COMPILE_CACHE_SIZE = 64


def _default_roots() -> list[Path]:
    """``$POLYHOST_ALLOWED_ROOTS`` (paths joined by the OS path separator), else the cwd."""
    configured = os.environ.get("POLYHOST_ALLOWED_ROOTS")
    if configured:
        return [Path(part) for part in configured.split(os.pathsep) if part]
    return [Path.cwd()]


class HostConfig(BaseModel):
    """Settings of a host; every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(default_factory=default_home, description="state folder ($POLYHOST_HOME)")
    db: str | None = Field(None, description="store URL; default: HOME/polyhost.db")
    concurrency: int = Field(64, ge=1, description="nodes running at once, across all runs")
    env_allow: list[str] = Field(
        default_factory=list, description="environment variables workflows may read as env.NAME"
    )
    max_output_bytes: int = Field(16 * 1024 * 1024, ge=1, description="largest node output")
    process_workers: int | None = Field(None, ge=1, description="size of the process pool")
    lease_seconds: float = Field(
        15.0, gt=0, description="how long a run stays ours without a renewal (crash recovery)"
    )
    durable_commits: bool = Field(
        True,
        description="commit each node's result before its dependents start (crash recovery "
        "never re-runs a completed node); off: commit in the background, cheaper per node, "
        "and a crash may run the last completed nodes again (same idempotency key)",
    )
    allowed_roots: list[Path] = Field(
        default_factory=_default_roots,
        description="folders native nodes may read and write files in (relative paths resolve "
        "against the first); nothing outside them, symlinks included",
    )
    renew_every: float = Field(
        1.0, gt=0, description="lease renewal period; also how soon a cancel from elsewhere lands"
    )
    limits: Limits = Field(
        default_factory=default_limits,
        description="every limit on documents, expressions and runs (docs/limits.md)",
    )
    wasm_cache: bool = Field(
        True,
        description="keep compiled wasm modules under HOME/wasm-cache, so a new process loads "
        "them in milliseconds instead of compiling again",
    )


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
        self._stop_serving: anyio.Event | None = None
        self._compiled: OrderedDict[tuple[int, str], CompiledWorkflow] = OrderedDict()
        self._closed = False
        # Known as secrets from the start: a sidecar's log may show them before any run does.
        allowed_env(self.config.env_allow)
        self.owner = Owner(host_id=new_run_id(), hostname=socket.gethostname(), pid=os.getpid())

    @property
    def history(self) -> RunHistory:
        """The runs this host's store keeps, read only: list (filters, cursor), one run's
        result, record and events, id prefixes. What the CLI and a server show comes from here.
        """
        return RunHistory(self.store)

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

    def _compile_cached(self, workflow: Workflow) -> CompiledWorkflow:
        # Resuming many runs of one workflow compiles it once (per catalog version).
        key = (self.catalog.version, workflow.model_dump_json(by_alias=True))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self.compile(workflow)
            self._compiled[key] = compiled
            if len(self._compiled) > _COMPILE_CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return compiled

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
    ) -> RunResult:
        """Run a workflow (a path, a model or a compiled plan) and return its result.

        Raises ``CompileError`` for an invalid workflow and ``InputError`` for bad inputs; a
        failing node never raises here, it gives a result with status ``failed``.
        """
        if self._closed:
            raise RunStateError("the host is closed")
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
            document=compiled.workflow.model_dump(mode="json", by_alias=True, exclude_none=True),
            source=source,
            manifest=os.pathsep.join(compiled.manifests) or None,
            started_at=time.time(),
            parent_run_id=parent_run_id,
            owner=self.owner,
            lease_seconds=self.config.lease_seconds,
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
        store = self._require_store()
        await store.flush()
        stored = await anyio.to_thread.run_sync(store.get_result, run_id)
        if stored.status is RunStatus.PAUSED:
            _check_resume_input(stored.pause, inputs)
        record = await anyio.to_thread.run_sync(
            functools.partial(
                store.claim_run,
                stored.execution_id,
                self.owner,
                self.config.lease_seconds,
                statuses=(RunStatus.PAUSED, RunStatus.RUNNING, RunStatus.PENDING),
            )
        )
        return await self._continue(record, inputs, on_event)

    async def retry(
        self, run_id: str, *, on_event: Callable[[Event], None] | None = None
    ) -> RunResult:
        """Continue a failed run from the nodes that failed, keeping every completed output."""
        store = self._require_store()
        await store.flush()
        record = await anyio.to_thread.run_sync(
            functools.partial(
                store.claim_run,
                run_id,
                self.owner,
                self.config.lease_seconds,
                statuses=(RunStatus.FAILED,),
            )
        )
        return await self._continue(record, None, on_event)

    async def cancel_run(self, run_id: str) -> RunStatus:
        """Cancel a run wherever it executes; a paused run is cancelled at once.

        Returns ``running`` when the request went to the host executing it (which stops it
        within ``renew_every`` seconds) and ``cancelled`` when it is already done.
        """
        if self.cancel(run_id):
            return RunStatus.RUNNING
        store = self._require_store()
        await store.flush()
        return await anyio.to_thread.run_sync(store.request_cancel, run_id)

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
        store = self._require_store()
        due = await anyio.to_thread.run_sync(store.due_runs, time.time())
        results: list[RunResult] = []

        async def one(run_id: str) -> None:
            try:
                result = await self.resume(run_id)
            except RunStateError:
                return  # another host took it first
            except Exception as exc:  # one bad run must not stop the others
                (on_error or _log_run_error)(run_id, exc)
                return
            results.append(result)
            if on_result is not None:
                on_result(result)

        async with anyio.create_task_group() as tg:
            for run_id in due:
                if run_id not in self._active:
                    tg.start_soon(one, run_id)
        return results

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
        stop = self._stop_serving = anyio.Event()
        report = on_error or _log_run_error

        async def poll() -> None:
            try:
                await self.resume_due(on_result=on_result, on_error=report)
            except Exception as exc:  # the store was busy or failing: poll again later
                report("", exc)

        async with anyio.create_task_group() as tg:
            while not stop.is_set():
                tg.start_soon(poll)
                with anyio.move_on_after(poll_every):
                    await stop.wait()

    def stop_serving(self) -> None:
        """End :meth:`serve`, handing on the runs it executes: they stay running, released in
        the store, so another host takes them over at once."""
        for execution in list(self._active.values()):
            execution.abandon()
        if self._stop_serving is not None:
            self._stop_serving.set()

    async def _continue(
        self,
        record: RunRecord,
        resume_input: dict[str, Any] | None,
        on_event: Callable[[Event], None] | None,
    ) -> RunResult:
        store = self._require_store()
        try:
            await self._load_manifests(_manifest_paths(record.manifest))
            compiled = self._compile_cached(
                parse_workflow(record.document, default_id=record.workflow_id)
            )
            nodes = await anyio.to_thread.run_sync(store.load_nodes, record.run_id)
            events = await anyio.to_thread.run_sync(store.events, record.run_id)
            execution = Execution(
                compiled,
                record.inputs,
                run_id=record.run_id,
                router=self.router,
                limiter=self._capacity(),
                store=store,
                subscribers=[on_event] if on_event is not None else None,
                settings=self._settings(),
                record=record,
                owner=self.owner,
                resumption=Resumption(
                    nodes=nodes,
                    last_seq=events[-1].seq if events else 0,
                    resume_input=resume_input,
                    started_at=record.started_at,
                ),
            )
        except anyio.get_cancelled_exc_class():
            store.release_run(record.run_id, self.owner)
            raise
        except Exception as exc:
            # The run is ours now and cannot go on (its document no longer compiles, its
            # records cannot be read): it ends here, failed, rather than stay running.
            return await self._end_unstartable(record, exc)
        return await self._execute(execution)

    async def _end_unstartable(self, record: RunRecord, exc: Exception) -> RunResult:
        """Record a run this host took over, and cannot continue, as failed with ``exc``."""
        store = self._require_store()
        if isinstance(exc, PolyhostError):
            code, message = exc.code, exc.message
        else:
            code, message = "internal_error", f"{type(exc).__name__}: {exc}"
        error = {"node": None, "code": code, "message": f"the run cannot go on: {message}"}
        result = RunResult(
            execution_id=record.run_id,
            workflow_id=record.workflow_id,
            status=RunStatus.FAILED,
            error=error,
            started_at=record.started_at,
            inputs=record.inputs,
        )
        try:
            known = await anyio.to_thread.run_sync(store.get_result, record.run_id)
            result.nodes = known.nodes
            last = await anyio.to_thread.run_sync(store.events, record.run_id)
            seq = last[-1].seq + 1 if last else 1
            data = {"status": "failed", "duration_ms": 0.0, "error": error}
            store.record_event(
                Event(record.run_id, seq, EventType.RUN_FAILED, time.time(), None, data)
            )
        except Exception:  # what the run had is unreadable: record the end without it
            result.nodes = {}
        try:
            store.record_run_finished(result)
            await store.flush()
        except PolyhostError as failure:
            _log.error("run %s: cannot record its end: %s", record.run_id, failure.message)
            store.release_run(record.run_id, self.owner)
        return result

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
        """Start the stored run ``run_id`` afresh: same document, same inputs, a new run id."""
        store = self._require_store()
        record = await anyio.to_thread.run_sync(store.get_record, run_id)
        manifests = _manifest_paths(record.manifest)
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
        )

    def cancel(self, run_id: str) -> bool:
        """Cancel a run this host is executing; False when it runs no such run."""
        execution = self._active.get(run_id)
        if execution is None:
            return False
        execution.cancel()
        return True

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
        )

    def _allowed_env(self) -> dict[str, str]:
        # The host's own allow-list and those of the manifests loaded (their `[host] env`).
        return allowed_env([*self.config.env_allow, *self.catalog.env_allow])

    def _require_store(self) -> RunStore:
        if self.store is None:
            raise RunStateError("this host runs without a store, so it keeps no history")
        return self.store


def _manifest_paths(joined: str | None) -> tuple[str, ...]:
    """The manifests a run record names (kept as one string, joined by the path separator)."""
    return tuple(part for part in (joined or "").split(os.pathsep) if part)


def _with_manifests(compiled: CompiledWorkflow, manifests: tuple[str, ...]) -> CompiledWorkflow:
    if not manifests or compiled.manifests == manifests:
        return compiled
    return replace(compiled, manifests=manifests)


def _check_resume_input(pause: dict[str, Any] | None, inputs: dict[str, Any] | None) -> None:
    """Refuse, before taking the run over, input that an approval it waits for would refuse."""
    for waiting in (pause or {}).get("waiting", []):
        if waiting.get("kind") != "approval":
            continue
        node = waiting.get("node")
        if inputs is None:
            raise InputError(
                f"the run waits for approval at node '{node}': resume it with input "
                f"(--input K=V) that matches its schema",
                field=node,
            )
        schema = waiting.get("schema") or {"type": "object"}
        try:
            errors = schema_errors(validator_for(schema), inputs)
        except PolyhostError as exc:
            raise InputError(
                f"resume input for node '{node}': its schema cannot be used: {exc.message}",
                field=node,
            ) from None
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.absolute_path) or None
            raise InputError(
                f"resume input for node '{node}': "
                + "; ".join(
                    f"'{'.'.join(str(p) for p in e.absolute_path) or '(root)'}': {e.message}"
                    for e in errors
                ),
                field=where,
            )


def _log_run_error(run_id: str, exc: BaseException) -> None:
    message = exc.message if isinstance(exc, PolyhostError) else f"{type(exc).__name__}: {exc}"
    if run_id:
        _log.error("run %s cannot be taken over: %s", run_id, message)
    else:
        _log.error("cannot look for due runs: %s", message)
