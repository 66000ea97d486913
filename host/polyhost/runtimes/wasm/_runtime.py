"""The wasm runtime: WebAssembly modules in Wasmtime, with limits and explicit grants.

A node type names a module (``module = "build/score.wasm"``, relative to its manifest), its
``limits`` (memory, fuel, timeout, output size, tables, instances) and its ``grants`` (folders to
read or write, environment variables, arguments); nothing is granted unless listed. The guest
ABI is ``wasm-nodes/ABI.md``: a reactor exports ``memory``, ``polyhost_alloc`` and
``polyhost_run`` (the fast style); a WASI command exports ``_start`` and speaks JSON on stdin
and stdout. docs/wasm.md describes both, the error codes, and what a call costs.

Each call runs in a fresh store and instance: short reactor calls inline on the event loop's
thread, the rest on worker threads (``_inline`` says how the two are told apart). A guest
that traps, runs out of fuel or memory, times out or returns garbage fails its node with a typed
``NodeError`` whose ``code`` says which limit or rule it broke; the host itself is never at
risk. wasmtime is imported on first use, so hosts that run no wasm node do not pay for loading
it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.lowlevel import EventLoopToken

from ..._errors import NodeError, NodeOutputError, NodeTimeoutError, RuntimeUnavailableError
from ..._limits import Limits, default_limits
from ...workflow._catalog import NodeType
from .._context import NodeContext
from .._plugin import options_of
from ._inline import INLINE_SLICE, EventBuffer, InlinePace
from ._inspect import ModuleLimits
from ._limits import Preopen, WasmGrants, WasmLimits, parse_grants, parse_limits
from ._options import WasmOptions

if TYPE_CHECKING:
    from ._cache import CachedModule
    from ._call import CallRequest, GuestFailure, WasmMachine

__all__ = ["WasmRuntime", "check_wasm_node_type", "module_limits"]

_T = TypeVar("_T")

# How long past its own timeout a call may take before the adapter gives up on the thread: the
# epoch check stops running wasm within a tick, but not a guest blocked in a WASI call (reading
# a FIFO in a granted folder, say; wasmtime's WASI has no setting to refuse opening one). The
# thread is then abandoned, blocked where it is: WASI calls run on daemon threads of their own,
# so an abandoned one never keeps the process from exiting.
_GRACE = 1.0
_OUTPUT_ERRORS = frozenset({"wasm_output_too_large", "wasm_invalid_output"})


@dataclass(frozen=True, slots=True)
class _Policy:
    """A node type's module path, limits and grants, parsed once."""

    name: str  # the node type's
    module: Path
    limits: WasmLimits
    grants: WasmGrants
    base: Path  # the manifest's folder, which grants are relative to
    pooled: bool  # its limits fit the instance pool's


class WasmRuntime:
    """Runs ``runtime = "wasm"`` node types.

    ``cache_dir`` keeps compiled modules on disk across processes (``HOME/wasm-cache`` in a
    host); None keeps them in memory only.
    """

    name = "wasm"

    def __init__(self, *, cache_dir: Path | None = None, limits: Limits | None = None) -> None:
        self._cache_dir = cache_dir
        self._module_limits = module_limits(limits or default_limits())
        self._machines: dict[tuple[bool, bool], WasmMachine] = {}
        self._lock = threading.Lock()
        self._policies: dict[str, tuple[NodeType, _Policy]] = {}
        self._pace = InlinePace()
        self._unpooled: set[str] = set()  # modules that need more than a pool slot holds
        self._closed = False

    def machine(self, *, metered: bool = False, pooled: bool = True) -> WasmMachine:
        """The engine, linker and module cache (metering fuel or not, with an instance pool or
        not), created on first use."""
        key = (metered, pooled)
        found = self._machines.get(key)
        if found is None:
            with self._lock:
                if self._closed:
                    raise RuntimeUnavailableError("the wasm runtime is closed")
                found = self._machines.get(key)
                if found is None:
                    from ._call import PoolLimits, WasmMachine  # noqa: PLC0415 (wasmtime)

                    found = self._machines[key] = WasmMachine(
                        self._cache_dir,
                        metered=metered,
                        pool=PoolLimits() if pooled else None,
                        limits=self._module_limits,
                    )
        return found

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        """Run one attempt in a fresh instance of the node's module: inline when its calls are
        short and cannot block outside wasm (see ``_inline``), else on a worker thread."""
        from ._cache import OutsidePoolError  # noqa: PLC0415 (loaded by now)
        from ._call import CallRequest, GuestFailure  # noqa: PLC0415 (loaded by now)

        policy = self._policy(node_type, ctx.node_id)
        key = str(policy.module)
        metered = policy.limits.fuel is not None
        machine = self.machine(metered=metered, pooled=policy.pooled and key not in self._unpooled)
        payload = _input(params, ctx)
        stop = _Stop(ctx)
        try:
            try:
                module = await self._module(machine, policy, ctx.node_id)
            except OutsidePoolError:
                self._unpooled.add(key)
                machine = self.machine(metered=metered, pooled=False)
                module = await self._module(machine, policy, ctx.node_id)
            wasi = module.info.uses_wasi
            if not wasi and machine.pool is not None and self._pace.inline(key):
                inline = self._inline(machine, policy, module, payload, ctx)
                if inline is not None:
                    return inline
            token = anyio.lowlevel.current_token()
            log = _ToLoop(lambda level, message: ctx.log(message, level), token)
            chunk = _ToLoop(ctx.chunk, token)
            request = CallRequest(
                module=module,
                limits=policy.limits,
                input=payload,
                preopens=_preopens(policy, ctx.node_id) if wasi else [],
                env=policy.grants.environment() if wasi else [],
                args=policy.grants.args,
                log=log,
                chunk=chunk,
                cancelled=stop.is_set,
            )
            call = functools.partial(_call, machine, request)
            done: tuple[dict[str, Any], float]
            if not wasi:  # only WASI calls can block outside wasm
                done = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
                self._pace.ran(key, done[1] - log.spent - chunk.spent)
                return done[0]
            with anyio.fail_after(policy.limits.timeout + _GRACE):
                done = await _on_daemon_thread(call, token)
                return done[0]
        except GuestFailure as failure:
            raise _node_error(failure, ctx.node_id) from None
        except TimeoutError:
            stop.set()
            raise NodeTimeoutError(
                f"the guest ran past limits.timeout ({policy.limits.timeout:g}s) and did not "
                "stop (it is blocked outside wasm)",
                node=ctx.node_id,
                code="wasm_timeout",
                field="limits.timeout",
            ) from None
        except BaseException:
            stop.set()  # cancelled: the guest stops at its next epoch tick
            raise

    def _inline(
        self,
        machine: WasmMachine,
        policy: _Policy,
        module: CachedModule,
        payload: bytes,
        ctx: NodeContext,
    ) -> dict[str, Any] | None:
        """One call on this thread; None when it overran its slice and must be re-run."""
        from ._call import CallRequest, GuestFailure  # noqa: PLC0415 (loaded by now)

        events = EventBuffer()
        request = CallRequest(
            module=module,
            limits=policy.limits,
            input=payload,
            log=events.log,
            chunk=events.chunk,
            yield_after=INLINE_SLICE,
        )
        key = str(policy.module)
        try:
            output, seconds = _call(machine, request)
        except GuestFailure as failure:
            if failure.code == "wasm_yield":
                self._pace.overran(key)
                return None  # its logs and chunks are dropped: the re-run makes them again
            events.flush(lambda level, message: ctx.log(message, level), ctx.chunk)
            raise
        self._pace.ran(key, seconds)
        events.flush(lambda level, message: ctx.log(message, level), ctx.chunk)
        return output

    async def aclose(self) -> None:
        """Stop the epoch thread; idempotent. Compiled modules stay in the disk cache."""
        with self._lock:
            self._closed = True
            machines, self._machines = list(self._machines.values()), {}
        for machine in machines:
            machine.close()

    async def _module(self, machine: WasmMachine, policy: _Policy, node_id: str) -> CachedModule:
        from ._cache import OutsidePoolError, WasmModuleError  # noqa: PLC0415 (loaded)

        try:
            # A warm module is a stat and a dict lookup; compiling one takes a worker thread.
            found = machine.cache.peek(policy.module)
            if found is not None:
                return found
            return await anyio.to_thread.run_sync(machine.cache.load, policy.module)
        except OutsidePoolError:
            raise
        except WasmModuleError as exc:
            raise NodeError(
                f"node type {policy.name}: {exc}",
                node=node_id,
                code="invalid_wasm_module",
                field="type",
                retryable=False,
            ) from None

    def _policy(self, node_type: NodeType, node_id: str) -> _Policy:
        known = self._policies.get(node_type.type)
        if known is not None and known[0] is node_type:
            return known[1]
        try:
            policy = _parse_policy(node_type)
        except ValueError as exc:
            raise NodeError(
                f"node type {node_type.type}: {exc}",
                node=node_id,
                code="invalid_wasm_module",
                field="type",
                retryable=False,
            ) from None
        self._policies[node_type.type] = (node_type, policy)
        return policy


def _parse_policy(node_type: NodeType) -> _Policy:
    from ._ffi import PoolLimits  # noqa: PLC0415 (loads wasmtime)

    options = options_of(node_type, WasmOptions)
    base = Path(node_type.base_dir) if node_type.base_dir else Path.cwd()
    limits = parse_limits(options.limits)
    pool = PoolLimits()
    return _Policy(
        name=node_type.type,
        module=base / options.module,
        limits=limits,
        grants=parse_grants(options.grants),
        base=base,
        pooled=limits.memories <= 1
        and limits.memory <= pool.memory
        and limits.tables <= pool.tables
        and limits.table_elements <= pool.table_elements,
    )


def _preopens(policy: _Policy, node_id: str) -> list[Preopen]:
    # Resolved at every call: a granted folder swapped for a symlink meanwhile is refused.
    try:
        return policy.grants.preopens(policy.base)
    except ValueError as exc:
        raise NodeError(
            str(exc), node=node_id, code="wasm_grant", field="grants", retryable=False
        ) from None


class _Stop:
    """Set when the awaiting task gives up on the call; read by the epoch check each tick."""

    __slots__ = ("_ctx", "_set")

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set or self._ctx.cancelled


def _call(machine: WasmMachine, request: CallRequest) -> tuple[dict[str, Any], float]:
    """The call's output and the CPU time it took on its thread.

    CPU time, not wall-clock time: a call on a worker thread waits for the event loop to take
    each of its logs and chunks, and for the GIL, neither of which it would wait for inline.
    """
    # The deadline starts when the thread does, not while the call waited for one.
    request.deadline = time.monotonic() + request.limits.timeout
    start = time.thread_time()
    output = machine.call(request)
    return output, time.thread_time() - start


def _input(params: dict[str, Any], ctx: NodeContext) -> bytes:
    document = {
        "params": params,
        "ctx": {
            "run_id": ctx.run_id,
            "node_id": ctx.node_id,
            "attempt": ctx.attempt,
            "idempotency_key": ctx.idempotency_key,
        },
    }
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise NodeError(
            f"the parameters are not JSON: {exc}",
            node=ctx.node_id,
            code="invalid_parameters",
            retryable=False,
        ) from None


class _ToLoop:
    """``sink`` called on the event loop's thread from the worker thread running the guest.

    ``spent`` is the worker's CPU time spent handing events over, which an inline call would
    not spend: it is left out when judging whether the module's calls are short.
    """

    __slots__ = ("sink", "spent", "token")

    def __init__(self, sink: Callable[..., None], token: EventLoopToken) -> None:
        self.sink = sink
        self.token = token
        self.spent = 0.0

    def __call__(self, *args: Any) -> None:
        start = time.thread_time()
        try:
            anyio.from_thread.run_sync(self.sink, *args, token=self.token)
        finally:
            self.spent += time.thread_time() - start


async def _on_daemon_thread(call: Callable[[], _T], token: EventLoopToken) -> _T:
    """``call()`` on a new daemon thread; a cancel abandons the thread where it is."""
    done = anyio.Event()
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the awaiting task
            outcome.append((False, exc))
        with contextlib.suppress(Exception):  # the event loop may be gone by now
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=run, name="polyhost-wasm-wasi", daemon=True).start()
    await done.wait()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: _T = value
    return result


def _node_error(failure: GuestFailure, node_id: str) -> NodeError:
    if failure.code == "wasm_timeout":
        return NodeTimeoutError(
            failure.message, node=node_id, code=failure.code, field=failure.field
        )
    if failure.code in _OUTPUT_ERRORS:
        return NodeOutputError(
            failure.message, node=node_id, code=failure.code, field=failure.field
        )
    return NodeError(
        failure.message,
        node=node_id,
        code=failure.code,
        field=failure.field,
        retryable=failure.retryable,
    )


# compile-time checks ---------------------------------------------------------------------------

_CHECKED: dict[tuple[str, int, int, ModuleLimits], list[str]] = {}


def module_limits(limits: Limits) -> ModuleLimits:
    """The host's limits on wasm modules."""
    return ModuleLimits(
        max_bytes=limits.max_wasm_module_bytes,
        max_functions=limits.max_wasm_functions,
        max_imports=limits.max_wasm_imports,
        max_exports=limits.max_wasm_exports,
    )


def check_wasm_node_type(node_type: NodeType, limits: Limits | None = None) -> list[str]:
    """Why a wasm node type cannot run, for the compiler's diagnostics (empty when it can).

    Checks the limits and grants, that the module exists, validates, follows one style of the
    guest ABI, and imports only what the host provides. The module is read, not compiled.
    """
    problems: list[str] = []
    options = options_of(node_type, WasmOptions)
    base = Path(node_type.base_dir) if node_type.base_dir else Path.cwd()
    try:
        parse_limits(options.limits)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        parse_grants(options.grants)
    except ValueError as exc:
        problems.append(str(exc))
    path = base / options.module
    try:
        stat = path.stat()
        if not path.is_file():
            raise IsADirectoryError(21, "is a directory")
    except OSError as exc:
        problems.append(f"the module {path} cannot be read: {exc.strerror}")
        return problems
    bounds = module_limits(limits or default_limits())
    key = (str(path), stat.st_mtime_ns, stat.st_size, bounds)
    if key not in _CHECKED:
        if len(_CHECKED) >= 1024:  # many file versions over a long session: start afresh
            _CHECKED.clear()
        _CHECKED[key] = _check_module(path, stat.st_size, bounds)
    return problems + [f"node type {node_type.type}: {problem}" for problem in _CHECKED[key]]


@functools.cache
def _validation_engine() -> Any:
    from wasmtime import Engine  # noqa: PLC0415 (on first check only)

    engine = Engine()
    # Closed before interpreter teardown, when wasmtime's bindings may already be gone.
    atexit.register(engine.close)
    return engine


def _check_module(path: Path, size: int, bounds: ModuleLimits) -> list[str]:
    from wasmtime import Module, WasmtimeError  # noqa: PLC0415 (on first check only)

    from ._call import summary  # noqa: PLC0415 (loads wasmtime)
    from ._inspect import abi_problems, inspect_module  # noqa: PLC0415

    try:
        bounds.check_size(size)  # before reading a byte of it
        data = path.read_bytes()
    except OSError as exc:
        return [f"the module {path} cannot be read: {exc.strerror}"]
    except ValueError as exc:
        return [f"{path.name}: {exc}"]
    try:
        info = inspect_module(data, bounds)
    except ValueError as exc:
        return [f"{path.name}: {exc}"]
    try:
        Module.validate(_validation_engine(), data)
    except WasmtimeError as exc:
        return [f"{path.name} does not validate: {summary(exc)}"]
    return [f"{path.name}: {problem}" for problem in abi_problems(info)]
