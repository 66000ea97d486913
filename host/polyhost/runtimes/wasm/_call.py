"""One wasm call, start to end, on the calling (worker) thread: the engine side of the runtime.

Every call gets a fresh ``Store`` (its own limits, fuel and WASI context) and a fresh instance
from the module's ``InstancePre``, so nothing a guest does survives into the next call. Whatever
goes wrong inside is raised as a ``GuestFailure`` carrying a stable code; the adapter turns it
into the node's typed error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import tempfile
import time
import weakref
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Self

from wasmtime import (
    Config,
    Engine,
    ExitTrap,
    FuncType,
    Instance,
    Linker,
    Store,
    Trap,
    ValType,
    WasiConfig,
    WasmtimeError,
)

from ._cache import ModuleCache
from ._ffi import (
    INTERRUPT_PREFIX,
    GuestMemory,
    PoolLimits,
    get_func,
    get_memory,
    unwatch,
    use_instance_pool,
    watch,
)
from ._host_functions import CURRENT, CallRequest, CallState, emit, host_chunk, host_log
from ._inspect import ModuleLimits
from ._limits import EpochTicker, deadline_check
from ._results import (
    GuestFailure,
    command_result,
    exited,
    reactor_result,
    resource_limit,
    summary,
    timeout,
    too_large,
    trap_kind,
)

__all__ = [
    "CallRequest",
    "GuestFailure",
    "PoolLimits",
    "WasmMachine",
    "engine_fingerprint",
    "summary",
]

_MASK32 = 0xFFFF_FFFF
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_PAGE = 65536
_MIB = 1024 * 1024
_STDERR_TAIL = 4096


def _release(ticker: EpochTicker, cache: ModuleCache, linker: Linker, engine: Engine) -> None:
    ticker.close()
    cache.release()
    linker.close()
    engine.close()


class WasmMachine:
    """An engine, its linker, module cache and epoch ticker, shared by the calls of a host.

    Epoch interruption stops a guest on a wall-clock deadline or a cancel, always. A ``metered``
    machine also counts fuel, for node types that set ``limits.fuel``: the code it compiles is
    slower (docs/wasm.md has the figures), so a host keeps one machine of each kind. A machine
    with a ``pool`` takes instances from wasmtime's pooling allocator (much cheaper to make and
    drop); node types whose limits go past the pool's run on a machine without one.
    """

    def __init__(
        self,
        cache_dir: Path | None,
        *,
        metered: bool = False,
        pool: PoolLimits | None = None,
        limits: ModuleLimits | None = None,
    ) -> None:
        self.metered = metered
        config = Config()
        config.cranelift_opt_level = "speed"
        config.consume_fuel = metered
        config.epoch_interruption = True
        self.pool = pool if pool is not None and use_instance_pool(config, pool) else None
        self.engine = Engine(config)
        self.linker = Linker(self.engine)
        self.linker.define_wasi()
        i32 = ValType.i32()
        self.linker.define_func(
            "polyhost", "log", FuncType([i32, i32, i32], []), host_log, access_caller=True
        )
        self.linker.define_func(
            "polyhost", "chunk", FuncType([i32, i32], []), host_chunk, access_caller=True
        )
        self.cache = ModuleCache(
            self.engine,
            self.linker,
            cache_dir,
            engine_fingerprint(metered=metered),
            limits=limits,
            pooled=self.pool is not None,
        )
        self.ticker = EpochTicker(self.engine)
        # wasmtime's handles must be freed before the interpreter tears its modules down, or
        # their finalizers fail noisily at exit: release them on close, or at exit at the latest.
        self._finalizer = weakref.finalize(
            self, _release, self.ticker, self.cache, self.linker, self.engine
        )

    def close(self) -> None:
        """Stop the epoch thread and free the native handles; idempotent."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, request: CallRequest) -> dict[str, Any]:
        """Run one call and return its output object; ``GuestFailure`` when it fails."""
        state = CallState(request)
        store = Store(self.engine)
        watched: int | None = None
        ticking = False
        CURRENT.state = state
        try:
            self.ticker.acquire()
            ticking = True
            limits = request.limits
            store.set_limits(
                memory_size=limits.memory,
                table_elements=limits.table_elements,
                instances=limits.instances,
                tables=limits.tables,
                memories=limits.memories,
            )
            if self.metered:
                store.set_fuel(limits.fuel or 0)
            yield_after = request.yield_after
            yield_at = None if yield_after is None else time.monotonic() + yield_after
            watched = watch(store, deadline_check(request.deadline, request.cancelled, yield_at))
            if watched is None:  # no per-tick check: a fixed deadline, no early cancel
                if yield_after is not None:
                    raise GuestFailure("wasm_yield", "inline calls need the per-tick check")
                store.set_epoch_deadline(self.ticker.ticks_for(limits.timeout))
            if request.module.info.style == "command":
                output = _Command(store, request, state).run()
            else:
                output = _Reactor(store, request, state).run()
            if state.failure is not None:
                raise state.failure
            return output
        finally:
            CURRENT.state = None
            unwatch(watched)
            if ticking:
                self.ticker.release()
            store.close()
            if state.dropped and request.log is not None:
                emit(request.log, "warning", f"{state.dropped} log lines or chunks were dropped")


def engine_fingerprint(*, metered: bool) -> str:
    """What compiled code depends on: wasmtime's version, our engine settings, the machine."""
    fuel = "fuel" if metered else "no fuel"
    settings = f"wasmtime {version('wasmtime')}; {fuel}; epoch; speed; {platform.machine()}"
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


class _Guest:
    """Shared by both call styles: instantiation and the translation of failures."""

    def __init__(self, store: Store, request: CallRequest, state: CallState) -> None:
        self.store = store
        self.request = request
        self.state = state
        self.memory: GuestMemory | None = None

    def instantiate(self) -> Instance:
        try:
            return self.request.module.pre.instantiate(self.store)
        except (Trap, WasmtimeError) as exc:
            raise self.failure(exc) from None

    def failure(self, exc: Trap | WasmtimeError) -> GuestFailure:
        """The typed failure behind a trap or an error out of wasmtime."""
        if self.state.failure is not None:
            return self.state.failure
        limits = self.request.limits
        text = str(exc)
        if INTERRUPT_PREFIX in text:
            reason = text.split(INTERRUPT_PREFIX, 1)[1].strip().splitlines()[0]
            if reason == "timeout":
                return timeout(limits)
            if reason == "yield":
                return GuestFailure("wasm_yield", "the inline call ran past its time slice")
            return GuestFailure("cancelled", "the call was cancelled", retryable=True)
        code = exc.trap_code if isinstance(exc, Trap) else None
        kind = code.name if code is not None else ""
        if kind == "OUT_OF_FUEL":
            return GuestFailure(
                "wasm_out_of_fuel",
                f"the guest used up its fuel (limits.fuel = {limits.fuel or 0:_})",
                field="limits.fuel",
            )
        if kind == "INTERRUPT":
            return timeout(limits)
        if "exceeds memory limits" in text or self._memory_exhausted():
            return GuestFailure(
                "wasm_memory_limit",
                f"the guest reached its memory limit (limits.memory = {limits.memory} bytes)"
                + (f" and then trapped: {trap_kind(exc)}" if isinstance(exc, Trap) else ""),
                field="limits.memory",
            )
        resource = resource_limit(text, limits)
        if resource is not None:
            return resource
        if isinstance(exc, Trap):
            return GuestFailure("wasm_trap", f"the guest trapped: {trap_kind(exc)}")
        return GuestFailure("wasm_abi", f"the call failed: {summary(exc)}")

    def _memory_exhausted(self) -> bool:
        # A denied memory.grow returns -1 to the guest, which then usually traps or exits;
        # wasmtime-py cannot report the denial itself. A memory that ends within a typical
        # growth step of the cap (an eighth of it, or 1 MiB on small caps) says the limit, not a
        # bug, started it.
        if self.memory is None:
            return False
        try:
            size = self.memory.size()
        except (WasmtimeError, ValueError):
            return False
        cap = self.request.limits.memory
        return size > cap - max(min(_MIB, cap // 2), cap // 8)


class _Reactor(_Guest):
    """`polyhost_alloc` + `polyhost_run` on a fresh instance: the fast style."""

    def run(self) -> dict[str, Any]:
        store, request = self.store, self.request
        stderr = _Tail(_STDERR_TAIL)
        if request.module.info.uses_wasi:
            store.set_wasi(wasi_config(request, stderr=stderr))
        instance = self.instantiate()
        memory = self.memory = get_memory(store, instance)
        alloc = get_func(store, instance, "polyhost_alloc")
        run = get_func(store, instance, "polyhost_run")
        if memory is None or alloc is None or run is None:  # checked at load; a safety net
            raise GuestFailure("wasm_abi", "the module lacks the reactor exports")
        data = request.input
        try:
            if request.module.initialize:  # a WASI reactor sets up libc here
                initialize = get_func(store, instance, "_initialize", results=0)
                if initialize is not None:
                    initialize()
            pointer = alloc(len(data)) & _MASK32
            if pointer == 0 or not memory.write(pointer, data):
                raise GuestFailure(
                    "wasm_abi",
                    f"polyhost_alloc({len(data)}) returned {pointer:#x}, outside the memory "
                    f"of {memory.size()} bytes",
                )
            packed = run(pointer, len(data)) & _MASK64
        except ExitTrap as exc:  # libc's exit() in a reactor: no output can follow
            raise exited(exc.code, stderr.text()) from None
        except (Trap, WasmtimeError) as exc:
            raise self.failure(exc) from None
        out_pointer, out_length = packed >> 32, packed & _MASK32
        limit = request.limits.output
        if out_length > limit:
            raise too_large(out_length, limit)
        raw = memory.read(out_pointer, out_length)
        if raw is None:
            raise GuestFailure(
                "wasm_invalid_output",
                f"polyhost_run returned {out_length} bytes at {out_pointer:#x}, outside memory",
            )
        return reactor_result(raw)


class _Command(_Guest):
    """A WASI command: the input on stdin, the output on stdout, the exit code."""

    def run(self) -> dict[str, Any]:
        request = self.request
        stdout = _Capture(request.limits.output)
        stderr = _Tail(_STDERR_TAIL)
        with _stdin_file(request.input) as stdin:
            self.store.set_wasi(wasi_config(request, stdin=stdin, stdout=stdout, stderr=stderr))
        instance = self.instantiate()
        self.memory = get_memory(self.store, instance)
        start = get_func(self.store, instance, "_start", results=0)
        if start is None:
            raise GuestFailure("wasm_abi", "the module lacks `_start`")
        status = 0
        try:
            start()
        except ExitTrap as exc:
            status = exc.code
        except (Trap, WasmtimeError) as exc:
            if stdout.overflow:
                raise too_large(stdout.size, request.limits.output) from None
            raise self.failure(exc) from None
        if stdout.overflow:
            raise too_large(stdout.size, request.limits.output)
        return command_result(bytes(stdout.data), status, stderr.text())


def wasi_config(
    request: CallRequest,
    *,
    stdin: str | None = None,
    stdout: Callable[[bytes], int | None] | None = None,
    stderr: Callable[[bytes], int | None] | None = None,
) -> WasiConfig:
    """The WASI context of one call: the granted folders, variables and arguments, nothing more.

    Standard streams go to the given sinks, or nowhere; sockets are never granted.
    """
    config = WasiConfig()
    config.argv = [request.module.name, *request.args]
    config.env = request.env
    for preopen in request.preopens:
        try:
            config.preopen_dir(str(preopen.host), preopen.guest, preopen.writable)
        except WasmtimeError:
            raise GuestFailure(
                "wasm_grant", f"cannot open the granted folder {preopen.host}", field="grants"
            ) from None
    if stdin is not None:
        config.stdin_file = stdin
    if stdout is not None:
        config.stdout_custom = stdout
    if stderr is not None:
        config.stderr_custom = stderr
    return config


@contextlib.contextmanager
def _stdin_file(data: bytes) -> Any:
    # WasiConfig opens the file when it is set, so it can be removed right after.
    handle, path = tempfile.mkstemp(prefix="polyhost-stdin-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


class _Capture:
    """stdout, up to a cap; past it the rest is discarded and ``overflow`` set."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.size = 0
        self.overflow = False

    def __call__(self, chunk: bytes) -> int | None:
        self.size += len(chunk)
        if self.size > self.cap:
            self.overflow = True
        else:
            self.data += chunk
        return None


class _Tail:
    """The last ``cap`` bytes of stderr: what explains a failed command."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()

    def __call__(self, chunk: bytes) -> int | None:
        self.data += chunk
        if len(self.data) > 2 * self.cap:
            del self.data[: len(self.data) - self.cap]
        return None

    def text(self) -> str:
        return bytes(self.data[-self.cap :]).decode("utf-8", errors="replace").strip()
