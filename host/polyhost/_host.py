"""The Host: what an app embeds to compile and run workflows (catalog, store, runtimes)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
from pydantic import BaseModel, ConfigDict, Field

from ._catalog import Catalog
from ._compiler import CompiledWorkflow, compile_workflow, parse_workflow
from ._diagnostics import Diagnostic
from ._engine import EngineSettings, Execution
from ._errors import CompileError, RunStateError
from ._events import Event
from ._imports import backend_options
from ._limiter import NodeSlots
from ._loading import MANIFEST_NAME, load_workflow
from ._model import Workflow
from ._result import RunResult, RunStatus
from ._router import RuntimeRouter
from .runtimes import PythonRuntime
from .store import RunRecord, RunStore, default_home, open_store

__all__ = ["Host", "HostConfig", "new_run_id"]

Target = CompiledWorkflow | Workflow | str | Path
_DEFAULT: Any = object()


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
        if not self.router.has("python"):
            self.router.register(
                PythonRuntime(self.catalog, process_workers=self.config.process_workers)
            )
        self._limiter: NodeSlots | None = None
        self._active: dict[str, Execution] = {}
        self._manifests: dict[int, str] = {}
        self._closed = False

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
        workflow = load_workflow(path)
        if loaded:
            self._manifests[id(workflow)] = os.pathsep.join(loaded)
        return workflow

    def check(self, workflow: Workflow) -> list[Diagnostic]:
        """Every diagnostic for ``workflow`` (errors and warnings); never raises for bad input."""
        try:
            compiled = self.compile(workflow)
        except CompileError as exc:
            return list(exc.diagnostics)
        return list(compiled.warnings)

    def compile(self, workflow: Workflow) -> CompiledWorkflow:
        """The immutable plan of ``workflow``; ``CompileError`` carries every diagnostic."""
        return compile_workflow(workflow, self.catalog, runtimes=self.router.runtimes)

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
        manifest = None
        if isinstance(target, str | Path):
            source = source or str(Path(target).resolve())
            target = self.load(target)
        if isinstance(target, Workflow):
            manifest = self._manifests.get(id(target))
            target = self.compile(target)
        compiled = target
        prepared = compiled.inputs.prepare(inputs)
        run_id = run_id or new_run_id()
        record = RunRecord(
            run_id=run_id,
            workflow_id=compiled.workflow_id,
            status=RunStatus.RUNNING,
            inputs=prepared,
            document=compiled.workflow.model_dump(mode="json", by_alias=True, exclude_none=True),
            source=source,
            manifest=manifest,
            started_at=time.time(),
            parent_run_id=parent_run_id,
        )
        execution = Execution(
            compiled,
            prepared,
            run_id=run_id,
            router=self.router,
            limiter=self._capacity(),
            store=self.store,
            subscribers=[on_event] if on_event is not None else None,
            settings=EngineSettings(
                max_output_bytes=self.config.max_output_bytes, env=self._allowed_env()
            ),
            record=record,
        )
        self._active[run_id] = execution
        try:
            return await execution.execute()
        finally:
            self._active.pop(run_id, None)

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
        for manifest in (record.manifest or "").split(os.pathsep):
            if manifest and Path(manifest).is_file():
                self.catalog.load_manifest(manifest)
        workflow = parse_workflow(record.document, default_id=record.workflow_id)
        return await self.run(
            workflow,
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

    def _allowed_env(self) -> dict[str, str]:
        return {name: os.environ[name] for name in self.config.env_allow if name in os.environ}

    def _require_store(self) -> RunStore:
        if self.store is None:
            raise RunStateError("this host runs without a store, so it keeps no history")
        return self.store
