"""A minimal driver of the wasm node ABI (wasm-nodes/ABI.md), straight on wasmtime.

It checks the guests on their own, whatever the host adapter does around them: each call gets a
fresh store and instance, as in the host, with optional fuel, a memory cap and WASI grants.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

ROOT = Path(__file__).parents[2] / "wasm-nodes"
BUILD = ROOT / "build"


@functools.cache
def engine() -> wasmtime.Engine:
    """One engine for the test process, metering fuel as the host does."""
    config = wasmtime.Config()
    config.consume_fuel = True
    return wasmtime.Engine(config)


@functools.cache
def module(path: Path) -> wasmtime.Module:
    """The compiled module at ``path``."""
    # Compiled once per test process: a Go module takes seconds.
    return wasmtime.Module.from_file(engine(), str(path))


def _func(instance: wasmtime.Instance, store: wasmtime.Store, name: str) -> wasmtime.Func:
    item = instance.exports(store)[name]
    assert isinstance(item, wasmtime.Func), name
    return item


def payload(params: dict[str, Any]) -> bytes:
    """The input document of a call with these params and a fixed context."""
    ctx = {"run_id": "r1", "node_id": "n1", "attempt": 1, "idempotency_key": "r1/n1"}
    return json.dumps({"params": params, "ctx": ctx}).encode()


class OutOfBounds(Exception):
    """A reactor returned an output span outside its memory."""


@dataclass
class Call:
    """What one call returned: `output` (parsed JSON) or raw bytes, logs, chunks, exit code."""

    raw: bytes = b""
    exit_code: int = 0
    stderr: str = ""
    logs: list[tuple[int, str]] = field(default_factory=list)
    chunks: list[Any] = field(default_factory=list)

    @property
    def output(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Grants:
    """What the guest may reach: preopened folders and environment variables."""

    preopens: list[tuple[Path, str, bool]] = field(default_factory=list)  # host, guest, writable
    env: dict[str, str] = field(default_factory=dict)


def _store(
    grants: Grants, fuel: int, memory: int, stdin: Path, out: Path, err: Path
) -> wasmtime.Store:
    store = wasmtime.Store(engine())
    store.set_fuel(fuel)
    store.set_limits(memory_size=memory)
    wasi = wasmtime.WasiConfig()
    wasi.stdin_file = str(stdin)
    wasi.stdout_file = str(out)
    wasi.stderr_file = str(err)
    wasi.env = list(grants.env.items())
    for host, guest, writable in grants.preopens:
        wasi.preopen_dir(str(host), guest, writable)
    store.set_wasi(wasi)
    return store


def _linker(call: Call) -> wasmtime.Linker:
    linker = wasmtime.Linker(engine())
    linker.define_wasi()
    i32 = wasmtime.ValType.i32()

    def read(caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        return bytes(memory.read(caller, ptr, ptr + length))

    def log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        call.logs.append((level, read(caller, ptr, length).decode()))

    def chunk(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        call.chunks.append(json.loads(read(caller, ptr, length)))

    linker.define_func(
        "polyhost", "log", wasmtime.FuncType([i32, i32, i32], []), log, access_caller=True
    )
    linker.define_func(
        "polyhost", "chunk", wasmtime.FuncType([i32, i32], []), chunk, access_caller=True
    )
    return linker


def run(
    path: Path,
    params: dict[str, Any],
    grants: Grants | None = None,
    *,
    fuel: int = 2_000_000_000,
    memory: int = 64 << 20,
    raw_input: bytes | None = None,
) -> Call:
    """Run one call, reactor or command by the module's exports; traps propagate.

    ``raw_input`` replaces the input JSON built from ``params``.
    """
    grants = grants or Grants()
    data = payload(params) if raw_input is None else raw_input
    call = Call()
    mod = module(path)
    exports = {export.name for export in mod.exports}
    with tempfile.TemporaryDirectory() as scratch:
        stdin, out, err = (Path(scratch) / name for name in ("in", "out", "err"))
        stdin.write_bytes(data)
        store = _store(grants, fuel, memory, stdin, out, err)
        instance = _linker(call).instantiate(store, mod)
        if "polyhost_run" in exports:
            if "_initialize" in exports:
                _func(instance, store, "_initialize")(store)
            ptr = _func(instance, store, "polyhost_alloc")(store, len(data))
            mem = instance.exports(store)["memory"]
            assert isinstance(mem, wasmtime.Memory)
            mem.write(store, data, ptr)
            packed = _func(instance, store, "polyhost_run")(store, ptr, len(data))
            packed &= 0xFFFFFFFFFFFFFFFF
            start, length = packed >> 32, packed & 0xFFFFFFFF
            if start + length > mem.data_len(store):
                raise OutOfBounds(f"output span {start:#x}+{length} is outside the memory")
            call.raw = bytes(mem.read(store, start, start + length))
        else:
            try:
                _func(instance, store, "_start")(store)
            except wasmtime.ExitTrap as exit_:
                call.exit_code = exit_.code
            call.raw = out.read_bytes()
        call.stderr = err.read_text(errors="replace")
    return call
