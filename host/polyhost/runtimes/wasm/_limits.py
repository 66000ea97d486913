"""What a wasm node type may use: its ``limits`` and ``grants`` (spec section 4), parsed once.

Nothing here imports wasmtime, so the compiler can check a manifest without loading the engine.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Protocol

from ...workflow._units import parse_duration, parse_size

__all__ = [
    "DEFAULT_LIMITS",
    "EpochTicker",
    "Preopen",
    "WasmGrants",
    "WasmLimits",
    "parse_grants",
    "parse_limits",
]


@dataclass(frozen=True, slots=True)
class WasmLimits:
    """Resource caps of one call; every one but ``fuel`` has a safe default."""

    memory: int = 64 * 1024**2  # bytes of linear memory, per memory
    # Wasm instructions, roughly: a deterministic CPU budget. Metering costs up to a third of
    # a tight loop's speed, so only node types that set it pay for it; the rest are bounded by
    # their timeout alone (docs/wasm.md has the figures).
    fuel: int | None = None
    timeout: float = 10.0  # seconds of wall clock, whatever the guest does
    output: int = 1024**2  # bytes of output JSON (and of each streamed chunk)
    tables: int = 8
    table_elements: int = 100_000
    instances: int = 1  # a call instantiates exactly one module
    memories: int = 1


DEFAULT_LIMITS = WasmLimits()
_SIZES = ("memory", "output")
_COUNTS = ("fuel", "tables", "table_elements", "instances", "memories")


def parse_limits(raw: Mapping[str, Any]) -> WasmLimits:
    """A node type's ``limits`` table; ``ValueError`` names the key that is wrong."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            if key in _SIZES:
                values[key] = parse_size(value)
            elif key == "timeout":
                values[key] = parse_duration(value)
            elif key in _COUNTS:
                values[key] = _count(value)
            else:
                known = ", ".join(sorted((*_SIZES, *_COUNTS, "timeout")))
                raise ValueError(f"unknown limit (known: {known})")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"limits.{key}: {exc}") from None
        if values[key] <= 0:
            raise ValueError(f"limits.{key}: must be positive")
    return WasmLimits(**values)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class Preopen:
    """A host directory a guest sees at ``guest`` (``/`` + the grant as written)."""

    host: Path
    guest: str
    writable: bool


@dataclass(frozen=True, slots=True)
class WasmGrants:
    """Capabilities a guest gets through WASI; nothing unless listed."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    def preopens(self, base_dir: Path) -> list[Preopen]:
        """The directories to preopen, each resolved (symlinks too) and kept inside ``base_dir``.

        A folder listed under ``write`` is writable, and readable; one under ``read`` only is
        read-only. ``ValueError`` when a grant leaves ``base_dir`` or is not a directory.
        """
        base = base_dir.resolve()
        found: dict[str, Preopen] = {}
        for grant, writable in [*((g, False) for g in self.read), *((g, True) for g in self.write)]:
            relative = _relative(grant)
            host = (base / relative).resolve()
            if host != base and base not in host.parents:
                raise ValueError(f"grant {grant!r} leads outside the manifest's folder")
            if not host.is_dir():
                raise ValueError(f"grant {grant!r}: {host} is not a directory")
            guest = "/" + relative if relative != "." else "/"
            if guest not in found or writable:
                found[guest] = Preopen(host, guest, writable)
        return list(found.values())

    def environment(self) -> list[tuple[str, str]]:
        """The granted variables that the host's environment has, with the host's values."""
        return [(name, os.environ[name]) for name in self.env if name in os.environ]


def parse_grants(raw: Mapping[str, Any]) -> WasmGrants:
    """A node type's ``grants`` table; ``ValueError`` names the key that is wrong."""
    values: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in ("read", "write", "env", "args"):
            raise ValueError(f"grants.{key}: unknown grant (known: args, env, read, write)")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"grants.{key}: expected a list of strings")
        if key in ("read", "write"):
            for path in value:
                try:
                    _relative(path)
                except ValueError as exc:
                    raise ValueError(f"grants.{key}: {exc}") from None
        values[key] = tuple(value)
    return WasmGrants(**values)


def _relative(grant: str) -> str:
    """A grant as a normalised relative POSIX path ("data/" -> "data", "" -> ".")."""
    path = PurePosixPath(grant.replace("\\", "/"))
    if path.is_absolute() or PureWindowsPath(grant).drive:
        raise ValueError(f"{grant!r} is absolute; grants are relative to the manifest's folder")
    if ".." in path.parts:
        raise ValueError(f"{grant!r} climbs out with '..'")
    return str(path)


class _Epochs(Protocol):
    def increment_epoch(self) -> None: ...


class EpochTicker:
    """Advances an engine's epoch every ``period`` seconds while any guest runs.

    Each running store is watched at every tick (see ``_ffi.watch``), so a timed-out or
    cancelled guest stops within one period. The thread sleeps when no guest runs.
    """

    def __init__(self, engine: _Epochs, period: float = 0.01) -> None:
        self._engine = engine
        self.period = period
        self._active = 0
        self._closed = False
        self._stopped = False  # no tick after this: the engine is about to be closed
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def ticks_for(self, seconds: float) -> int:
        """Ticks that cover ``seconds`` (for a fixed deadline, when stores cannot be watched)."""
        return max(1, math.ceil(seconds / self.period)) + 1

    def acquire(self) -> None:
        """A guest starts running."""
        with self._wake:
            if self._closed:
                raise RuntimeError("the wasm runtime is closed")
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="polyhost-wasm-epoch", daemon=True
                )
                self._thread.start()
            if self._active == 1:
                self._wake.notify()

    def release(self) -> None:
        """A guest finished."""
        with self._wake:
            self._active -= 1

    def close(self) -> None:
        """Stop the thread; idempotent. After this no tick reaches the engine, which may then
        be closed.

        Guests still running (calls abandoned by a cancel) keep the ticks coming until they
        stop at their next one, so none is left spinning; this waits for that a little while.
        A guest blocked outside wasm (a WASI read of a FIFO) gets no tick anyway: the ticks stop
        after that while, whatever still runs.
        """
        with self._wake:
            self._closed = True
            self._wake.notify()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=1.0)
        with self._wake:
            self._stopped = True

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._active == 0 and not self._closed:
                    self._wake.wait()
                if self._active == 0 or self._stopped:
                    self._thread = None
                    return
            time.sleep(self.period)
            with self._wake:  # close() cannot return between this check and the tick
                if self._stopped:
                    self._thread = None
                    return
                self._engine.increment_epoch()


def deadline_check(
    deadline: float, cancelled: Callable[[], bool], yield_at: float | None = None
) -> Callable[[], str | None]:
    """The per-tick question for one call: stop for a timeout, a cancel, or go on (None).

    A call made on the event loop's thread also stops ("yield") once it is past ``yield_at``,
    to be run again on a worker thread.
    """

    def check() -> str | None:
        if cancelled():
            return "cancelled"
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        if yield_at is not None and now >= yield_at:
            return "yield"
        return None

    return check
