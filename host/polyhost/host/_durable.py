"""A host's durable lifecycle: resuming paused runs and runs whose host died, retrying failed
ones, cancelling wherever a run executes, the ``serve`` loop that takes over due runs, and a
taken-over run continued from what the store kept (or ended, when it cannot go on)."""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._errors import InputError, PolyhostError, RunStateError
from ..compile._compiled import CompiledWorkflow
from ..compile._parsing import parse_workflow
from ..compile._schema import schema_errors, validator_for
from ..engine._engine import Execution, Resumption
from ..events._events import Event, EventType
from ..events._result import RunResult, RunStatus
from ..store import RunRecord
from ..store._base import ClaimedRun
from ._history import manifest_paths

if TYPE_CHECKING:
    from ._host import Host

__all__ = ["DurableRuns", "OnRunError"]

OnRunError = Callable[[str, BaseException], None]
_log = logging.getLogger("polyhost")
_COMPILE_CACHE_SIZE = 64


class DurableRuns:
    """What a ``Host`` does with the runs its store keeps (its public methods say more)."""

    def __init__(self, host: Host) -> None:
        # Weak: the host owns this object, and a cycle would keep a dropped host (its store's
        # connections included) alive until the garbage collector ran.
        self._host_ref = weakref.ref(host)
        self._stop_serving: anyio.Event | None = None
        self._compiled: OrderedDict[tuple[int, str, str], CompiledWorkflow] = OrderedDict()

    @property
    def _host(self) -> Host:
        host = self._host_ref()
        assert host is not None  # only its host calls this object
        return host

    def _compile_cached(self, claimed: ClaimedRun) -> CompiledWorkflow:
        # Resuming many runs of one workflow parses and compiles it once (per catalog
        # version): the stored document's key stands for it, so a hit costs no parsing.
        record = claimed.record
        key = (self._host.catalog.version, record.workflow_id, claimed.document_key)
        compiled = self._compiled.get(key)
        if compiled is None:
            workflow = parse_workflow(record.document, default_id=record.workflow_id)
            compiled = self._host.compile(workflow)
            self._compiled[key] = compiled
            if len(self._compiled) > _COMPILE_CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return compiled

    async def resume(
        self,
        run_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
    ) -> RunResult:
        """:meth:`Host.resume`."""
        store = self._host._require_store()
        await store.flush()
        # One thread hop and one transaction: the input checked against what the run waits
        # for, the claim, and what continuing needs.
        claimed = await anyio.to_thread.run_sync(
            functools.partial(
                store.claim_and_load,
                run_id,
                self._host.owner,
                self._host.config.lease_seconds,
                statuses=(RunStatus.PAUSED, RunStatus.RUNNING, RunStatus.PENDING),
                check=functools.partial(_check_paused_input, inputs),
            )
        )
        return await self._continue(claimed, inputs, on_event)

    async def retry(
        self, run_id: str, *, on_event: Callable[[Event], None] | None = None
    ) -> RunResult:
        """:meth:`Host.retry`."""
        store = self._host._require_store()
        await store.flush()
        claimed = await anyio.to_thread.run_sync(
            functools.partial(
                store.claim_and_load,
                run_id,
                self._host.owner,
                self._host.config.lease_seconds,
                statuses=(RunStatus.FAILED,),
            )
        )
        return await self._continue(claimed, None, on_event)

    async def cancel_run(self, run_id: str) -> RunStatus:
        """:meth:`Host.cancel_run`."""
        if self._host.cancel(run_id):
            return RunStatus.RUNNING
        store = self._host._require_store()
        await store.flush()
        return await anyio.to_thread.run_sync(store.request_cancel, run_id)

    async def resume_due(
        self,
        *,
        on_result: Callable[[RunResult], None] | None = None,
        on_error: OnRunError | None = None,
    ) -> list[RunResult]:
        """:meth:`Host.resume_due`."""
        store = self._host._require_store()
        due = await anyio.to_thread.run_sync(store.due_runs, time.time())
        results: list[RunResult] = []

        async def one(run_id: str) -> None:
            try:
                result = await self._host.resume(run_id)
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
                if run_id not in self._host._active:
                    tg.start_soon(one, run_id)
        return results

    async def serve(
        self,
        *,
        poll_every: float = 1.0,
        on_result: Callable[[RunResult], None] | None = None,
        on_error: OnRunError | None = None,
    ) -> None:
        """:meth:`Host.serve`."""
        stop = self._stop_serving = anyio.Event()
        report = on_error or _log_run_error

        async def poll() -> None:
            try:
                await self._host.resume_due(on_result=on_result, on_error=report)
            except Exception as exc:  # the store was busy or failing: poll again later
                report("", exc)

        async with anyio.create_task_group() as tg:
            while not stop.is_set():
                tg.start_soon(poll)
                with anyio.move_on_after(poll_every):
                    await stop.wait()

    def stop_serving(self) -> None:
        """:meth:`Host.stop_serving`."""
        for execution in list(self._host._active.values()):
            execution.abandon()
        if self._stop_serving is not None:
            self._stop_serving.set()

    async def _continue(
        self,
        claimed: ClaimedRun,
        resume_input: dict[str, Any] | None,
        on_event: Callable[[Event], None] | None,
    ) -> RunResult:
        store = self._host._require_store()
        record = claimed.record
        try:
            if claimed.unreadable is not None:
                raise claimed.unreadable
            manifests = manifest_paths(record.manifest)
            if manifests:
                await self._host._load_manifests(manifests)
            compiled = self._compile_cached(claimed)
            execution = Execution(
                compiled,
                record.inputs,
                run_id=record.run_id,
                router=self._host.router,
                limiter=self._host._capacity(),
                store=store,
                subscribers=[on_event] if on_event is not None else None,
                settings=self._host._settings(),
                record=record,
                owner=self._host.owner,
                resumption=Resumption(
                    nodes=claimed.nodes,
                    last_seq=claimed.last_seq,
                    resume_input=resume_input,
                    started_at=record.started_at,
                ),
            )
        except anyio.get_cancelled_exc_class():
            store.release_run(record.run_id, self._host.owner)
            raise
        except Exception as exc:
            # The run is ours now and cannot go on (its document no longer compiles, its
            # records cannot be read): it ends here, failed, rather than stay running.
            return await self._end_unstartable(record, exc)
        return await self._host._execute(execution)

    async def _end_unstartable(self, record: RunRecord, exc: Exception) -> RunResult:
        """Record a run this host took over, and cannot continue, as failed with ``exc``."""
        store = self._host._require_store()
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
            store.release_run(record.run_id, self._host.owner)
        return result


def _check_paused_input(
    inputs: dict[str, Any] | None, status: RunStatus, pause: dict[str, Any] | None
) -> None:
    """The claim's check on resume: a paused run's input is checked before it is taken over."""
    if status is RunStatus.PAUSED:
        _check_resume_input(pause, inputs)


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
