"""The few fast paths wasmtime-py's public API lacks, taken from its generated C bindings.

This is the only module that touches ``wasmtime._ffi`` and ``wasmtime._bindings``, for two
reasons:

* Speed. ``Func.__call__`` rebuilds the function's type and converts every value through Python
  objects (about 17 µs a call) and ``Instance.exports`` wraps every export (about 8 µs each); a
  reactor call needs two calls and three exports, so the C API directly saves some 60 µs a node.
* Prompt interruption. The public API can only give a store a fixed epoch deadline, and the epoch
  is shared by every store of the engine, so one call among many cannot be stopped early. The C
  API's epoch-deadline callback lets each store ask, at every tick, whether to go on.

Every binding used is looked up at import; if a later wasmtime-py moves one, ``AVAILABLE`` is
False and the callers fall back to the public API (slower calls; a cancelled call runs on to its
timeout instead of stopping at the next tick).
"""

from __future__ import annotations

import ctypes
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasmtime import Caller, Config, Func, Instance, Memory, Store, Trap, WasmtimeError

__all__ = [
    "AVAILABLE",
    "GuestMemory",
    "PoolLimits",
    "get_func",
    "get_memory",
    "unwatch",
    "use_instance_pool",
    "watch",
]

try:
    from wasmtime import _bindings, _ffi

    ffi: Any = _ffi  # generated ctypes bindings: typed loosely, checked here at import
    raw: Any = _bindings  # its ctypes functions themselves, without the wrapper frames
    _CALLBACK = raw._wasmtime_store_epoch_deadline_callback.argtypes[1]
    _NO_FINALIZER = raw._wasmtime_store_epoch_deadline_callback.argtypes[3]
    _I32 = ffi.WASMTIME_I32.value
    _I64 = ffi.WASMTIME_I64.value
    _FUNC = ffi.WASMTIME_EXTERN_FUNC.value
    _MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
    _export_get = raw._wasmtime_instance_export_get
    _func_call = raw._wasmtime_func_call
    _memory_data = raw._wasmtime_memory_data
    _memory_size = raw._wasmtime_memory_data_size
    _REQUIRED = (ffi.wasmtime_error_new, ffi.wasmtime_val_t, ffi.wasmtime_extern_t, ffi.wasm_trap_t)
    _TRAP_PTR = ctypes.POINTER(ffi.wasm_trap_t)
    _VALS = {n: ffi.wasmtime_val_t * n for n in range(4)}
    AVAILABLE = callable(getattr(Memory, "_from_raw", None))
except (ImportError, AttributeError, IndexError):  # pragma: no cover (another wasmtime-py)
    AVAILABLE = False

IntFunc = Callable[..., int]

# Calls being watched: key -> a function that returns why to stop the guest, or None to go on.
_WATCHED: dict[int, Callable[[], str | None]] = {}
_KEYS = itertools.count(1)
INTERRUPT_PREFIX = "polyhost interrupt: "


def get_func(store: Store, instance: Instance, name: str, results: int = 1) -> IntFunc | None:
    """The exported function ``name`` as a callable ``(*i32 args) -> int``, or None.

    The function returns one integer (i32 or i64) when ``results`` is 1, nothing (the callable
    gives 0) when it is 0. wasmtime checks the types and raises ``WasmtimeError`` on a mismatch,
    ``Trap`` when the guest traps.
    """
    if not AVAILABLE:
        found = instance.exports(store).get(name)
        if not isinstance(found, Func):
            return None
        func = found
        return lambda *args: int(func(store, *args) or 0)
    item = _export(store, instance, name)
    if item is None or item.kind != _FUNC:
        return None
    handle = ctypes.byref(item.of.func)
    context = store._context()
    out = _VALS[results]()

    def call(*args: int) -> int:
        params = _VALS[len(args)]()
        for i, value in enumerate(args):
            params[i].kind = _I32
            params[i].of.i32 = value
        trap = _TRAP_PTR()
        error = _func_call(context, handle, params, len(args), out, results, ctypes.byref(trap))
        if error:
            raise WasmtimeError._from_ptr(error)
        if trap:
            raise Trap._from_ptr(trap)
        if results == 0:
            return 0
        kind = out[0].kind
        if kind == _I64:
            return int(out[0].of.i64)
        if kind == _I32:
            return int(out[0].of.i32)
        raise WasmtimeError(f"export {name!r} returned a non-integer value")

    return call


def get_memory(store: Store, instance: Instance, name: str = "memory") -> GuestMemory | None:
    """The exported linear memory ``name``, or None."""
    if not AVAILABLE:
        found = instance.exports(store).get(name)
        return GuestMemory(store, found) if isinstance(found, Memory) else None
    item = _export(store, instance, name)
    if item is None or item.kind != _MEMORY:
        return None
    return GuestMemory(store, Memory._from_raw(item.of.memory))


class GuestMemory:
    """A guest's linear memory, read and written with bounds checks (and no Python copies)."""

    __slots__ = ("_context", "_handle", "_store", "memory")

    def __init__(self, store: Store | Caller, memory: Memory) -> None:
        self._store = store
        self.memory = memory
        if AVAILABLE:
            self._context = store._context()
            self._handle = ctypes.byref(memory._memory)

    def size(self) -> int:
        """The memory's current size in bytes (it changes when the guest grows it)."""
        if not AVAILABLE:
            return self.memory.data_len(self._store)
        return int(_memory_size(self._context, self._handle))

    def read(self, pointer: int, length: int) -> bytes | None:
        """``length`` bytes at ``pointer``, or None when they are not all inside the memory."""
        if pointer < 0 or length < 0 or pointer + length > self.size():
            return None
        if not AVAILABLE:
            return bytes(self.memory.read(self._store, pointer, pointer + length))
        return ctypes.string_at(self._base() + pointer, length)

    def write(self, pointer: int, data: bytes) -> bool:
        """Copy ``data`` to ``pointer``; False (and nothing written) when it does not fit."""
        if pointer < 0 or pointer + len(data) > self.size():
            return False
        if not AVAILABLE:
            self.memory.write(self._store, data, pointer)
        else:
            ctypes.memmove(self._base() + pointer, data, len(data))
        return True

    def _base(self) -> int:
        return ctypes.cast(_memory_data(self._context, self._handle), ctypes.c_void_p).value or 0


def use_instance_pool(config: Config, pool: PoolLimits) -> bool:
    """Give ``config`` wasmtime's pooling instance allocator; False when the bindings lack it.

    A pooled engine reserves its slots once and reuses them, so making and dropping an
    instance costs a few microseconds instead of an mmap and munmap each (a trivial call goes
    from some 55 to some 25 µs). The pool's limits must cover those of the stores that use it.
    """
    if not AVAILABLE:
        return False
    try:
        limits = raw.wasmtime_pooling_allocation_config_new()
    except AttributeError:  # pragma: no cover (another wasmtime-py)
        return False
    try:
        raw.wasmtime_pooling_allocation_config_total_core_instances_set(limits, pool.slots)
        raw.wasmtime_pooling_allocation_config_total_memories_set(limits, pool.slots)
        raw.wasmtime_pooling_allocation_config_total_tables_set(limits, pool.slots * pool.tables)
        raw.wasmtime_pooling_allocation_config_max_memories_per_module_set(limits, 1)
        raw.wasmtime_pooling_allocation_config_max_tables_per_module_set(limits, pool.tables)
        raw.wasmtime_pooling_allocation_config_table_elements_set(limits, pool.table_elements)
        raw.wasmtime_pooling_allocation_config_max_memory_size_set(limits, pool.memory)
        # Reset the first pages of a slot with memset rather than madvise: cheaper for the
        # small memories most calls touch.
        raw.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(limits, 65536)
        raw.wasmtime_pooling_allocation_config_table_keep_resident_set(limits, 65536)
        raw.wasmtime_pooling_allocation_strategy_set(config.ptr(), limits)
    finally:
        raw.wasmtime_pooling_allocation_config_delete(limits)
    return True


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """The most a pooled engine's instances may use (and what the pool reserves)."""

    slots: int = 512  # instances alive at once (calls running, or abandoned and stopping)
    memory: int = 4 * 1024**3  # a wasm32 memory's maximum: a slot is reserved at that size
    tables: int = 8
    table_elements: int = 100_000


def watch(store: Store, should_stop: Callable[[], str | None]) -> int | None:
    """Ask ``should_stop`` at every epoch tick whether the store's guest must stop.

    Returns a key for :func:`unwatch`, or None when the bindings lack the callback (the caller
    then relies on a fixed deadline). The store's deadline is set to the next tick.
    """
    if not AVAILABLE:
        return None
    key = next(_KEYS)  # atomic under the GIL
    _WATCHED[key] = should_stop
    ffi.wasmtime_store_epoch_deadline_callback(
        store.ptr(), _on_deadline, ctypes.c_void_p(key), _NO_FINALIZER()
    )
    store.set_epoch_deadline(1)
    return key


def unwatch(key: int | None) -> None:
    """Stop watching a call (its store is about to be closed)."""
    if key is not None:
        _WATCHED.pop(key, None)


def _export(store: Store, instance: Instance, name: str) -> Any:
    item = ffi.wasmtime_extern_t()
    encoded = name.encode("utf-8")
    found = _export_get(
        store._context(),
        ctypes.byref(instance._instance),
        encoded,
        len(encoded),
        ctypes.byref(item),
    )
    return item if found else None


def _deadline(context: Any, data: int | None, delta: Any, kind: Any) -> int:
    # Runs on the guest's thread at each epoch tick; an exception here would be swallowed by
    # ctypes, so anything unexpected stops the guest rather than letting it run unbounded.
    try:
        check = _WATCHED.get(data or 0)
        reason = "the call is no longer watched" if check is None else check()
        if reason is None:
            delta[0] = 1
            kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
            return 0
    except BaseException as exc:
        reason = f"interrupt check failed: {exc}"
    error = ffi.wasmtime_error_new((INTERRUPT_PREFIX + reason).encode("utf-8"))
    return ctypes.cast(error, ctypes.c_void_p).value or 0


_on_deadline = _CALLBACK(_deadline) if AVAILABLE else None
