"""The host side of one call: its request, its state, and the functions a guest imports.

Host functions run on the guest's thread, in the middle of wasm, and find their call through a
thread-local. They never raise into wasmtime (wasmtime-py keeps the last exception of any thread
in one global, so a raise could surface in another thread's call): a problem is recorded in the
call's state, and the call fails once the guest returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wasmtime import Caller, Memory

from ._cache import CachedModule
from ._ffi import GuestMemory
from ._limits import Preopen, WasmLimits
from ._results import GuestFailure, too_large

__all__ = ["CURRENT", "CallRequest", "CallState", "emit", "host_chunk", "host_log"]

_MASK32 = 0xFFFF_FFFF
_LOG_LEVELS = ("debug", "info", "warning", "error")
_MAX_EVENTS = 10_000  # log lines and chunks per call; more are dropped (and counted)
_MAX_LOG_BYTES = 16 * 1024


@dataclass(slots=True)
class CallRequest:
    """Everything one call needs; built by the adapter on the event loop."""

    module: CachedModule
    limits: WasmLimits
    input: bytes
    preopens: list[Preopen] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    args: tuple[str, ...] = ()
    log: Callable[[str, str], None] | None = None
    chunk: Callable[[Any], None] | None = None
    cancelled: Callable[[], bool] = lambda: False
    deadline: float = math.inf  # time.monotonic() past which the guest is stopped
    # Inline calls (on the event loop's thread) stop this long after they start, to be re-run
    # on a worker thread; None for calls on a worker thread.
    yield_after: float | None = None


@dataclass(slots=True)
class CallState:
    """What host functions need during one call (they find it through a thread-local)."""

    request: CallRequest
    events: int = 0
    dropped: int = 0
    failure: GuestFailure | None = None


CURRENT = threading.local()


def host_log(caller: Caller, level: int, pointer: int, length: int) -> None:
    state: CallState | None = getattr(CURRENT, "state", None)
    if state is None or state.request.log is None or not _count_event(state):
        return
    data = _guest_bytes(caller, pointer, min(length & _MASK32, _MAX_LOG_BYTES))
    if data is None:
        return
    name = _LOG_LEVELS[level] if 0 <= level < len(_LOG_LEVELS) else "info"
    emit(state.request.log, name, data.decode("utf-8", errors="replace"))


def host_chunk(caller: Caller, pointer: int, length: int) -> None:
    state: CallState | None = getattr(CURRENT, "state", None)
    if state is None or state.failure is not None or not _count_event(state):
        return
    length &= _MASK32
    if length > state.request.limits.output:
        state.failure = too_large(length, state.request.limits.output)
        return
    data = _guest_bytes(caller, pointer, length)
    if data is None:
        state.failure = GuestFailure("wasm_invalid_output", "a chunk lies outside memory")
        return
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        state.failure = GuestFailure("wasm_invalid_output", f"a chunk is not JSON: {exc}")
        return
    if state.request.chunk is not None:
        with contextlib.suppress(Exception):
            state.request.chunk(value)


def _count_event(state: CallState) -> bool:
    if state.events >= _MAX_EVENTS:
        state.dropped += 1
        return False
    state.events += 1
    return True


def _guest_bytes(caller: Caller, pointer: int, length: int) -> bytes | None:
    memory = caller.get("memory")
    if not isinstance(memory, Memory):
        return None
    return GuestMemory(caller, memory).read(pointer & _MASK32, length)


def emit(sink: Callable[[str, str], None], level: str, message: str) -> None:
    # A sink that fails (the run ended meanwhile) must not reach wasmtime.
    with contextlib.suppress(Exception):
        sink(level, message)
