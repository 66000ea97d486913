"""Long-lived worker processes for python handlers declared with ``isolation = "process"``.

Workers are started with ``spawn``: the host runs threads, and a forked child could inherit a lock
that one of them held. Each worker runs one call at a time and keeps its imported handlers.
Cancelling the awaiting task (a node timeout) kills the worker running that call, because nothing
else can stop a running handler; the next call starts a fresh worker.

Inside a worker, ``ctx.log`` lines, and what the handler prints or logs (see ``_capture``), are
collected and returned with the reply, whether the call succeeded or failed (the first
``_MAX_LOGS`` lines of a call); ``ctx.chunk`` data is dropped, since a worker answers once per call.
As with any ``spawn`` start, a script that embeds the host needs an ``if __name__ == "__main__":``
guard, because each worker imports the script's module again.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import ctypes
import dataclasses
import multiprocessing
import multiprocessing.util
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

import anyio
import anyio.to_thread
from pydantic import BaseModel

from ... import _errors
from ..._codes import check_node_error
from ..._errors import HandlerError, NodeError, NodeOutputError, NodeParameterError
from ...events._capture import (
    LogSink,
    NodeOutput,
    capture_node_output,
    install,
    release_node_output,
)
from ...workflow._imports import import_callable

__all__ = ["ProcessPool", "RemoteHandlerError"]

Logs = list[tuple[str, str, dict[str, Any]]]
_GRACE = 1.0  # seconds an idle worker gets to exit on its own at close
_MAX_LOGS = 10_000  # log lines one call sends back; the rest are counted, not kept
_JOIN_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1
_pools: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


class RemoteHandlerError(HandlerError):
    """A handler raised in a worker process; ``remote_traceback`` is its traceback as text."""

    def __init__(self, message: str, *, node: str, remote_traceback: str) -> None:
        super().__init__(message, node=node)
        self.remote_traceback = remote_traceback
        self.add_note(f"traceback in the worker process:\n{remote_traceback}")


class _Worker:
    def __init__(self, context: SpawnContext) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, os.getpid()), name="polyhost-worker"
        )
        _SPAWNER.start(self.process)
        # Only the worker may hold its end, or the worker's death would never read as EOF here.
        child.close()
        self._lock = threading.Lock()

    def stop(self, grace: float = 0.0) -> int | None:
        """Reap the process, killing it after ``grace`` seconds; returns its exit code."""
        with self._lock:  # the reaping thread and aclose may race for the same worker
            if grace:
                self.process.join(grace)
            if self.process.exitcode is None:
                self.process.kill()
            self.process.join(_JOIN_TIMEOUT)
            return self.process.exitcode


class ProcessPool:
    """Up to ``max_workers`` worker processes (default: the CPU count), started on demand."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self._context = multiprocessing.get_context("spawn")
        self._slots = anyio.Semaphore(self.max_workers)
        # Own thread tokens, so waiting on workers never starves the threads of sync handlers.
        self._threads = anyio.CapacityLimiter(self.max_workers)
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._closed = False
        _pools.add(self)

    async def __aenter__(self) -> ProcessPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(
        self,
        handler_ref: str,
        base_dir: str | None,
        params: dict[str, Any],
        ctx_info: dict[str, Any],
        *,
        on_log: LogSink | None = None,
    ) -> tuple[dict[str, Any] | None, Logs]:
        """Call ``handler_ref`` ("package.module:function") in a worker; returns (output, logs).

        With ``on_log``, the call's log lines go there instead, before its error is raised when
        it failed (and the logs returned are empty).
        """
        node = str(ctx_info.get("node_id", "?"))
        try:
            request = pickle.dumps((handler_ref, base_dir, params, ctx_info))
        except Exception as exc:
            raise NodeParameterError(
                f"the parameters cannot be sent to a worker process: {exc}", node=node
            ) from exc
        async with self._slots:
            if self._closed:
                raise NodeError("the worker process pool is closed", node=node, retryable=False)
            worker = self._checkout(node)
            try:
                reply = await anyio.to_thread.run_sync(
                    _exchange, worker.conn, request, abandon_on_cancel=True, limiter=self._threads
                )
            except BaseException:
                await self._retire(worker)
                raise
            if reply is None:
                code = await self._retire(worker)
                raise HandlerError(
                    f"node {node}: the worker process died during the call ({_exit_text(code)})",
                    node=node,
                )
            self._checkin(worker)
        return _unpack(reply, node, on_log)

    async def aclose(self) -> None:
        """Stop every worker: idle ones get a moment to exit, busy ones are killed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        idle, self._idle = self._idle, []
        workers, self._workers = self._workers, set()
        for worker in idle:
            worker.conn.close()  # EOF ends an idle worker's loop
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_stop_all, idle, workers.difference(idle))

    def _kill_now(self) -> None:
        self._closed = True
        _stop_all([], self._workers)
        self._idle, self._workers = [], set()

    def _checkout(self, node: str) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                return worker
            worker.conn.close()  # died while idle (killed from outside); just replace it
            self._workers.discard(worker)
            worker.stop()
        try:
            worker = _Worker(self._context)
        except OSError as exc:
            raise NodeError(f"cannot start a worker process: {exc}", node=node) from exc
        self._workers.add(worker)
        return worker

    def _checkin(self, worker: _Worker) -> None:
        if self._closed:  # aclose ran during the call
            worker.conn.close()
            worker.stop(_GRACE)
        else:
            self._idle.append(worker)

    async def _retire(self, worker: _Worker) -> int | None:
        self._workers.discard(worker)
        # Shielded: a cancelled call must still reap its worker before the cancellation goes on.
        code: int | None = None
        with anyio.CancelScope(shield=True):
            code = await anyio.to_thread.run_sync(worker.stop, limiter=self._threads)
        return code


def _stop_all(idle: list[_Worker], busy: set[_Worker]) -> None:
    for worker in busy:
        worker.stop()
    for worker in idle:
        worker.stop(_GRACE)


def _exchange(conn: Connection, request: bytes) -> bytes | None:
    """Send one call and wait for the reply; None when the worker died first."""
    try:
        conn.send_bytes(request)
        return conn.recv_bytes()
    except (EOFError, OSError):
        conn.close()  # a busy worker's connection is only touched by this thread
        return None


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"exit code {code}, {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exit code {code}"


def _unpack(
    reply: bytes, node: str, on_log: LogSink | None = None
) -> tuple[dict[str, Any] | None, Logs]:
    try:
        (kind, *rest), logs = pickle.loads(reply)  # noqa: S301 (our own worker, the host's code)
    except Exception as exc:
        raise NodeOutputError(
            f"the output cannot be read back from the worker process: {type(exc).__name__}: {exc}",
            node=node,
        ) from None
    if on_log is not None:
        for level, message, fields in logs:
            on_log(level, message, fields)
        logs = []
    if kind == "ok":
        return rest[0], logs
    if kind == "raised":
        type_name, message, remote_traceback = rest
        raise RemoteHandlerError(
            f"{type_name}: {message}", node=node, remote_traceback=remote_traceback
        )
    if kind == "node_error":
        class_name, message, code, field, retryable = rest
        cls = getattr(_errors, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, NodeError)):
            cls = NodeError
        error = cls(message, node=node, code=code, field=field, retryable=retryable)
        raise check_node_error(error, "handler_error")
    if kind == "not_found":
        raise NodeError(rest[0], node=node, code="handler_not_found", retryable=False)
    raise NodeOutputError(rest[0], node=node)


class _Spawner:
    """Starts worker processes from one thread that lives as long as the host process.

    Workers ask for SIGKILL when their parent dies (``_die_with_host``), and Linux sends that
    signal when the *thread* that started the child ends: a worker started from a short-lived
    thread (an event loop run in a thread) would die with that thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[BaseProcess, concurrent.futures.Future[None]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def start(self, process: BaseProcess) -> None:
        """``process.start()`` on the spawner thread; raises what it raised."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="polyhost-worker-spawner", daemon=True
                )
                self._thread.start()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._jobs.put((process, done))
        done.result()

    def _run(self) -> None:
        while True:
            process, done = self._jobs.get()
            try:
                process.start()
            except BaseException as exc:  # handed to the caller, which raises it
                done.set_exception(exc)
            else:
                done.set_result(None)


_SPAWNER = _Spawner()


def _die_with_host(host_pid: int) -> None:
    """Make the worker die with the host, even a host killed by SIGKILL, so that no orphan runs
    on an attempt the host (or a later ``runs resume``) runs again."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != host_pid:  # the host died before the signal was asked for
        os._exit(1)


@atexit.register
def _kill_all() -> None:
    # atexit runs hooks last-in first-out, and multiprocessing.util (imported above) registered
    # its hook first: it would otherwise wait forever for workers that are still running.
    for pool in list(_pools):
        pool._kill_now()


# The worker side ------------------------------------------------------------------------------


def _serve(conn: Connection, host_pid: int) -> None:
    """Worker process entry point: answer calls until the host closes the pipe or goes away."""
    _die_with_host(host_pid)
    # Ctrl-C reaches the whole process group; the host decides what happens to its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What handlers print or log becomes their node's log lines, sent back with each reply.
    install()
    handlers: dict[tuple[str, str | None], Callable[..., Any]] = {}
    while True:
        try:
            handler_ref, base_dir, params, ctx_info = pickle.loads(conn.recv_bytes())  # noqa: S301
        except (EOFError, OSError):
            return
        if os.getppid() != host_pid:  # adopted by another process: the host is gone
            return
        logs = _Logs()
        output = NodeOutput(logs)
        token = capture_node_output(output)
        try:
            reply = _call(handlers, handler_ref, base_dir, params, ctx_info, logs=logs)
        finally:
            release_node_output(token)
            output.close()
        try:
            data = pickle.dumps((reply, logs.lines()))
        except Exception as exc:
            message = f"the output cannot be sent to the host: {type(exc).__name__}: {exc}"
            data = pickle.dumps((("output_error", message), []))
        try:
            conn.send_bytes(data)
        except OSError:
            return


def _call(
    handlers: dict[tuple[str, str | None], Callable[..., Any]],
    handler_ref: str,
    base_dir: str | None,
    params: dict[str, Any],
    ctx_info: dict[str, Any],
    *,
    logs: LogSink,
) -> tuple[Any, ...]:
    from .._context import NodeContext  # noqa: PLC0415 (worker only; _runtime imports this module)
    from ._runtime import _as_model, _inspect  # noqa: PLC0415

    key = (handler_ref, base_dir)
    if key not in handlers:
        try:
            handlers[key] = import_callable(handler_ref, base_dir)
        except Exception as exc:
            return (
                "not_found",
                f"cannot import handler {handler_ref!r}: {type(exc).__name__}: {exc}",
            )
    func = handlers[key]
    names = [f.name for f in dataclasses.fields(NodeContext) if not f.name.startswith("_")]
    known = {name: ctx_info[name] for name in names if name in ctx_info}
    ctx = NodeContext(**known, _log_sink=logs)
    try:
        signature = _inspect(func)
        arg = _as_model(signature.params_model, params, ctx) if signature.params_model else params
        args = (arg, ctx) if signature.takes_ctx else (arg,)
        result = asyncio.run(func(*args)) if signature.is_async else func(*args)
    except NodeError as exc:
        return ("node_error", type(exc).__name__, exc.message, exc.code, exc.field, exc.retryable)
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt (SIGINT is ignored here, so only a handler raises it)
        # and the rest fail the call like any exception: the worker lives on.
        return ("raised", type(exc).__name__, str(exc), traceback.format_exc())
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if result is not None and not isinstance(result, dict):
        message = f"the handler returned {type(result).__name__}; a node returns a dict or a model"
        return ("output_error", message)
    return ("ok", result)


class _Logs:
    """The log lines of one call in a worker, the first ``_MAX_LOGS`` of them."""

    def __init__(self) -> None:
        self._lines: Logs = []
        self._dropped = 0

    def __call__(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if len(self._lines) < _MAX_LOGS:
            self._lines.append((level, message, fields))
        else:
            self._dropped += 1

    def lines(self) -> Logs:
        if not self._dropped:
            return self._lines
        note = f"{self._dropped} more log lines of this call were dropped"
        return [*self._lines, ("warning", note, {})]
