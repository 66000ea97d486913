"""Compiled modules, kept in memory per file version and on disk per content and engine.

Compiling a module with Cranelift takes milliseconds to seconds; loading its serialized machine
code takes well under one. In memory, a module is found again by (path, mtime, size) with one
``stat``. On disk, under ``HOME/wasm-cache``, the entry's name is the SHA-256 of the module's bytes
plus a fingerprint of the wasmtime version and the engine's settings, so a changed module or a
new wasmtime never loads stale code, and two hosts (or two versions) can share the folder.
Hashing a large module costs milliseconds, so, like Python's ``.pyc`` files, a small index
record keyed by the module's path, size and mtime (nanoseconds) remembers its digest and what
it imports and exports: a cold start of an unchanged module reads neither the module nor its
hash. A module rewritten in place gets a new mtime and so a new record. The record also keeps
the module's counts of functions, imports and exports, so the host's limits are checked on a
cache hit too, and whether the module fits the instance pool: a module that does not is sent to
the engine without a pool at once, instead of being compiled for the pool in vain each time a
process starts.

An entry is written to a temporary file and renamed into place, so readers never see half of one.
It is wasmtime's serialized module followed by a trailer (a magic string, the payload's length
and CRC-32), checked before wasmtime trusts the machine code in it: a truncated or damaged entry
is ignored, the module compiled again, and the entry rewritten. A verified entry is mapped from
the file rather than copied (wasmtime ignores the bytes after its ELF image).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct
import tempfile
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmtime import Engine, InstancePre, Linker, Module, WasmtimeError

from ._inspect import ModuleInfo, ModuleLimitError, ModuleLimits, abi_problems, inspect_module

__all__ = ["CachedModule", "ModuleCache", "OutsidePoolError", "WasmModuleError"]

_TRAILER = struct.Struct("<16sQI")  # magic, payload length, CRC-32 of the payload
_MAGIC = b"polyhost-cwasm-2"


class WasmModuleError(ValueError):
    """A module that cannot be loaded: missing, invalid, outside the guest ABI, or past one of
    the host's limits (``limit`` names it)."""

    def __init__(self, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class OutsidePoolError(WasmModuleError):
    """A module that needs more than a pooled engine's slots hold (it runs on an engine
    without a pool, where the call's own limits decide)."""


@dataclass(frozen=True, slots=True)
class CachedModule:
    """A compiled module, linked against the host's imports, ready to instantiate."""

    module: Module
    pre: InstancePre
    info: ModuleInfo
    name: str
    initialize: bool  # a WASI reactor: `_initialize` runs before any other export


@dataclass(slots=True)
class CacheStats:
    """How modules were obtained; tests and benchmarks read these."""

    compiled: int = 0
    disk_hits: int = 0
    memory_hits: int = 0
    disk_rejected: int = 0  # entries that were damaged or from another engine
    disk_errors: list[str] = field(default_factory=list)


class ModuleCache:
    """Loads modules for one engine and linker; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        linker: Linker,
        directory: Path | None,
        fingerprint: str,
        *,
        max_entries: int = 256,
        limits: ModuleLimits | None = None,
        pooled: bool = False,
    ) -> None:
        self._engine = engine
        self._limits = limits or ModuleLimits()
        self._pooled = pooled
        self._linker = linker
        self._directory = directory
        self._fingerprint = fingerprint
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int, int], CachedModule] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def release(self) -> None:
        """Free every cached module's native handles; idempotent."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
        for entry in entries:
            entry.pre.close()
            entry.module.close()

    def load(self, path: Path) -> CachedModule:
        """The module at ``path``, compiled at most once per version of the file.

        Raises ``WasmModuleError`` for a missing, unreadable, invalid or ABI-less module.
        """
        try:
            stat = path.stat()
        except OSError as exc:
            raise WasmModuleError(f"cannot read the module {path}: {exc.strerror}") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        found = self._entries.get(key)
        if found is not None:
            self.stats.memory_hits += 1
            return found
        try:
            self._limits.check_size(stat.st_size)
        except ModuleLimitError as exc:
            raise WasmModuleError(f"{path.name}: {exc}", limit=exc.limit) from None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                found = self._load(path, stat)
                self._entries[key] = found
                if len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
            else:
                self.stats.memory_hits += 1
            return found

    def peek(self, path: Path) -> CachedModule | None:
        """The module at ``path`` if it is loaded and unchanged; never compiles."""
        try:
            stat = path.stat()
        except OSError:
            return None
        found = self._entries.get((str(path), stat.st_mtime_ns, stat.st_size))
        if found is not None:
            self.stats.memory_hits += 1
        return found

    def clear(self) -> None:
        """Forget the in-memory entries (the disk cache stays)."""
        with self._lock:
            self._entries.clear()

    def _load(self, path: Path, stat: os.stat_result) -> CachedModule:
        record = self._index_path(path, stat)
        indexed = self._read_index(record) if record is not None else None
        module: Module | None = None
        if indexed is not None:
            digest, info, outside_pool = indexed
            self._check(path, info, outside_pool)
            entry = self._entry_for(digest)
            module = self._read_entry(entry) if entry is not None else None
            if module is not None:
                self.stats.disk_hits += 1
        if module is None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise WasmModuleError(f"cannot read the module {path}: {exc.strerror}") from None
            try:
                info = inspect_module(data, self._limits)
            except ModuleLimitError as exc:
                raise WasmModuleError(f"{path.name}: {exc}", limit=exc.limit) from None
            except ValueError as exc:
                raise WasmModuleError(f"{path.name}: {exc}") from None
            problems = abi_problems(info)
            if problems:
                raise WasmModuleError(f"{path.name}: {'; '.join(problems)}")
            digest = hashlib.sha256(data).hexdigest()
            try:
                if self._pooled and not info.fits_pool():
                    raise OutsidePoolError(f"{path.name}: too many functions for a pool slot")
                module = self._compiled(data, digest, path, try_disk=indexed is None)
            except OutsidePoolError:
                if record is not None:
                    self._write_index(record, digest, info, outside_pool=True)
                raise
            if record is not None:
                self._write_index(
                    record, digest, info, outside_pool=False if self._pooled else None
                )
        try:
            pre = self._linker.instantiate_pre(module)
        except WasmtimeError as exc:
            raise WasmModuleError(f"{path.name}: cannot link: {_first_line(exc)}") from None
        initialize = info.style == "reactor" and info.exports.get("_initialize") == "function"
        return CachedModule(module, pre, info, path.name, initialize)

    def _check(self, path: Path, info: ModuleInfo, outside_pool: bool | None) -> None:
        """A module known from the index: within the limits, and fit for this engine."""
        try:
            self._limits.check(info)
        except ModuleLimitError as exc:
            raise WasmModuleError(f"{path.name}: {exc}", limit=exc.limit) from None
        if self._pooled and (outside_pool or not info.fits_pool()):
            raise OutsidePoolError(f"{path.name}: needs more than a pool slot holds")

    def _compiled(self, data: bytes, digest: str, path: Path, *, try_disk: bool) -> Module:
        entry = self._entry_for(digest)
        if entry is not None and try_disk:
            module = self._read_entry(entry)
            if module is not None:
                self.stats.disk_hits += 1
                return module
        try:
            module = Module(self._engine, data)
        except WasmtimeError as exc:
            if "pooling allocator" in str(exc):
                raise OutsidePoolError(f"{path.name}: {_first_line(exc)}") from None
            raise WasmModuleError(f"{path.name}: does not validate: {_first_line(exc)}") from None
        self.stats.compiled += 1
        if entry is not None:
            self._write_entry(entry, module)
        return module

    def _entry_for(self, digest: str) -> Path | None:
        if self._directory is None:
            return None
        return self._directory / f"{digest}-{self._fingerprint}.cwasm"

    def _index_path(self, path: Path, stat: os.stat_result) -> Path | None:
        if self._directory is None:
            return None
        key = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{self._fingerprint}"
        return self._directory / "index" / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def _read_index(self, record: Path) -> tuple[str, ModuleInfo, bool | None] | None:
        try:
            found = json.loads(record.read_bytes())
            digest = found["digest"]
            info = _info_from_json(found["info"])
            outside_pool = found.get("outside_pool")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # damaged: the module is read and hashed, and the record rewritten
        if not isinstance(digest, str) or len(digest) != 64 or abi_problems(info):
            return None
        return digest, info, outside_pool if isinstance(outside_pool, bool) else None

    def _write_index(
        self, record: Path, digest: str, info: ModuleInfo, *, outside_pool: bool | None
    ) -> None:
        if outside_pool is None:  # an engine without a pool cannot tell: keep what is known
            known = self._read_index(record)
            outside_pool = known[2] if known is not None else None
        document = {"digest": digest, "info": _info_to_json(info), "outside_pool": outside_pool}
        try:
            _write_atomically(record, [json.dumps(document).encode()])
        except OSError as exc:
            self.stats.disk_errors.append(f"{record.name}: {exc.strerror}")

    def _read_entry(self, entry: Path) -> Module | None:
        try:
            with open(entry, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size == 0:
                    intact = False
                else:
                    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as raw:
                        intact = _intact(raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.stats.disk_errors.append(f"{entry.name}: {exc}")
            return None
        if intact:
            try:
                return Module.deserialize_file(self._engine, str(entry))
            except (WasmtimeError, OSError):
                pass  # another engine's code despite the fingerprint: compile afresh
        self.stats.disk_rejected += 1
        return None

    def _write_entry(self, entry: Path, module: Module) -> None:
        payload = bytes(module.serialize())
        trailer = _TRAILER.pack(_MAGIC, len(payload), zlib.crc32(payload))
        try:
            _write_atomically(entry, [payload, trailer])
        except OSError as exc:
            # A read-only or full disk costs a compile next time, never a failed node.
            self.stats.disk_errors.append(f"{entry.name}: {exc.strerror}")


def _write_atomically(target: Path, parts: list[bytes]) -> None:
    """Write ``parts`` to a temporary file beside ``target`` and rename it into place."""
    temp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                out.write(part)
        os.replace(temp, target)
        temp = None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _info_to_json(info: ModuleInfo) -> dict[str, object]:
    signatures = info.signatures or {}
    return {
        "imports": [list(item) for item in info.imports],
        "exports": info.exports,
        "functions": info.functions,
        "export_count": info.export_count,
        "exported_functions": info.exported_functions,
        "signatures": None
        if info.signatures is None
        else {name: [list(ins), list(outs)] for name, (ins, outs) in signatures.items()},
    }


def _info_from_json(found: dict[str, Any]) -> ModuleInfo:
    # Raises KeyError, TypeError or ValueError on a record of any other shape.
    signatures: dict[str, Any] | None = found["signatures"]
    return ModuleInfo(
        imports=[(str(m), str(n), str(k)) for m, n, k in found["imports"]],
        exports={str(name): str(kind) for name, kind in dict(found["exports"]).items()},
        functions=int(found["functions"]),
        export_count=int(found["export_count"]),
        exported_functions=int(found["exported_functions"]),
        signatures=None
        if signatures is None
        else {
            str(name): (tuple(int(v) for v in params), tuple(int(v) for v in results))
            for name, (params, results) in dict(signatures).items()
        },
    )


def _intact(raw: bytes | mmap.mmap) -> bool:
    if len(raw) < _TRAILER.size:
        return False
    magic, length, crc = _TRAILER.unpack_from(raw, len(raw) - _TRAILER.size)
    if magic != _MAGIC or length != len(raw) - _TRAILER.size:
        return False
    with memoryview(raw) as view, view[:length] as payload:
        return bool(zlib.crc32(payload) == crc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
