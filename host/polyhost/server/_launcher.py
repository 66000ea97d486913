"""Runs the server starts (API, webhooks, schedules, resume, retry, rerun), in the background.

A request that starts a run is answered once the run is under way: every check that can refuse
it (inputs, the run's state, a pause's schema) has passed; an answer that does not carry the
run's result also waits for its record to be committed, so that a client that asks for the run
next finds it. The run itself goes on in the server's task group, whatever
the client does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from .._errors import PolyhostError
from ..events._events import Event, EventType
from ..events._result import RunResult
from ..host._host import Host

__all__ = ["Launcher", "Started"]

_log = logging.getLogger("polyhost.server")

# Starts a run: called with the event callback the run must report to; returns its result.
Drive = Callable[[Callable[[Event], None]], Awaitable[RunResult]]

_SETTLING = frozenset(
    {EventType.RUN_PAUSED, EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED}
)


@dataclass(slots=True)
class Started:
    """A run the server started: its id, and a way to wait for it to end or pause."""

    run_id: str = ""
    status: str = "running"
    result: RunResult | None = None
    error: BaseException | None = None
    paused: bool = False
    _begun: anyio.Event = field(default_factory=anyio.Event)
    _settled: anyio.Event = field(default_factory=anyio.Event)

    async def wait(self, timeout: float) -> bool:
        """True when the run ended or paused within ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._settled.wait()
        return self._settled.is_set()


class Launcher:
    """Starts runs in ``tasks`` and answers when each is recorded."""

    def __init__(self, host: Host, tasks: TaskGroup) -> None:
        self._host = host
        self._tasks = tasks

    async def start(self, drive: Drive) -> Started:
        """Start a run; raise what refused it (``InputError``, ``RunStateError``, ...)."""
        started = Started()

        def on_event(event: Event) -> None:
            if not started.run_id:
                started.run_id = event.run_id
                started._begun.set()
            if event.type in _SETTLING:
                # The result follows at once (the run's call returns): wait() waits for it.
                started.paused = event.type is EventType.RUN_PAUSED
                started.status = "paused" if started.paused else event.type.value.split(".")[1]

        async def run() -> None:
            try:
                started.result = await drive(on_event)
                started.status = started.result.status.value
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                started.error = exc
                if started.run_id:  # refused before it began: the request reports it
                    _log.error("run %s: %s", started.run_id, _describe(exc))
            finally:
                started._begun.set()
                started._settled.set()

        self._tasks.start_soon(run)
        await started._begun.wait()
        if not started.run_id:
            if started.error is not None:
                raise started.error
            raise PolyhostError("the run ended before it began")  # pragma: no cover
        return started

    async def recorded(self) -> None:
        """Commit what the runs started so far have queued, so that a client that asks for
        one next finds it (an answer that waits for the result needs no such commit)."""
        store = self._host.store
        if store is not None:
            await store.flush()


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, PolyhostError) else f"{type(exc).__name__}: {exc}"
