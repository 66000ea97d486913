"""The module cache: compiled once per file version in memory, once per content on disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from polyhost import Host, HostConfig, RunStatus
from polyhost.runtimes import WasmRuntime
from polyhost.runtimes.wasm import _cache as _wasm_cache
from tests.runtimes.wasm.guests import ECHO, Project, returns

pytestmark = pytest.mark.anyio


def runtime(host: Host) -> WasmRuntime:
    found = host.router.adapter("wasm")
    assert isinstance(found, WasmRuntime)
    return found


def cache_files(home: Path) -> list[Path]:
    return sorted((home / "wasm-cache").glob("*.cwasm"))


async def run_echo(home: Path, project: Project) -> Any:
    """Run the echo node in a new host; returns that host's cache statistics."""
    async with Host(HostConfig(home=home), store=None) as host:
        result = await host.run(project.workflow([{"id": "w", "type": "t.echo"}]))
        assert result.status is RunStatus.COMPLETED, result.error
        return runtime(host).machine().cache.stats


async def test_a_second_host_loads_from_disk_without_compiling(
    tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    first = await run_echo(home, project)
    assert (first.compiled, first.disk_hits) == (1, 0)
    assert len(cache_files(home)) == 1

    monkeypatch.setattr(_wasm_cache, "Module", _NoCompile)
    second = await run_echo(home, project)
    assert (second.compiled, second.disk_hits) == (0, 1)


class _NoCompile(wasmtime.Module):
    """wasmtime.Module whose constructor (compilation) fails; deserialize still works."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("compiled although the disk cache holds the module")


async def test_a_corrupt_entry_is_ignored_and_rewritten(tmp_path: Path, project: Project) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    await run_echo(home, project)
    [entry] = cache_files(home)
    good = entry.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    for broken in (bytes(damaged), good[: len(good) // 3], b"", b"garbage"):
        entry.write_bytes(broken)
        stats = await run_echo(home, project)
        assert (stats.compiled, stats.disk_rejected) == (1, 1)
        assert entry.read_bytes() == good


async def test_an_entry_from_another_wasmtime_is_not_used(
    tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    await run_echo(home, project)
    monkeypatch.setattr("polyhost.runtimes.wasm._call.version", lambda name: "0.0.0-other")
    stats = await run_echo(home, project)
    assert (stats.compiled, stats.disk_hits) == (1, 0)
    assert len(cache_files(home)) == 2


async def test_no_disk_cache_when_turned_off(tmp_path: Path, project: Project) -> None:
    project.wasm("t.echo", ECHO)
    async with Host(HostConfig(home=tmp_path / "home", wasm_cache=False), store=None) as host:
        result = await host.run(project.workflow([{"id": "w", "type": "t.echo"}]))
        assert result.status is RunStatus.COMPLETED
    assert not (tmp_path / "home" / "wasm-cache").exists()


async def test_an_unwritable_cache_costs_a_compile_not_a_failure(
    tmp_path: Path, project: Project
) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    home.mkdir()
    (home / "wasm-cache").write_text("a file where the folder should be")
    stats = await run_echo(home, project)
    assert stats.compiled == 1
    assert stats.disk_errors


async def test_in_memory_a_module_compiles_once_until_it_changes(
    project: Project, host: Host
) -> None:
    project.wasm("t.echo", ECHO)
    flow = project.workflow([{"id": f"n{i}", "type": "t.echo"} for i in range(20)])
    result = await host.run(flow)
    assert result.status is RunStatus.COMPLETED
    stats = runtime(host).machine().cache.stats
    assert stats.compiled == 1

    # A rebuilt module (new content, new mtime) is picked up by the next run.
    project.module("t_echo.wasm", returns('{"ok": {"version": 2}}'))
    path = project.root / "t_echo.wasm"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    result = await host.run(project.workflow([{"id": "w", "type": "t.echo"}]))
    assert result.nodes["w"].output == {"version": 2}
    assert stats.compiled == 2


async def test_atomic_writes_leave_no_temporary_files(tmp_path: Path, project: Project) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    await run_echo(home, project)
    assert [p.name for p in (home / "wasm-cache").iterdir() if p.name.startswith(".tmp")] == []


async def test_an_unchanged_module_is_neither_read_nor_hashed_on_a_cold_start(
    tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    await run_echo(home, project)

    def unread(*args: object) -> None:
        raise AssertionError("the module was read although its index record is current")

    monkeypatch.setattr(_wasm_cache, "inspect_module", unread)
    monkeypatch.setattr(_wasm_cache.hashlib, "sha256", _only_short_keys(_wasm_cache.hashlib.sha256))
    stats = await run_echo(home, project)
    assert (stats.compiled, stats.disk_hits) == (0, 1)


def _only_short_keys(sha256: Any) -> Any:
    # The index record's name is a hash of the path, size and mtime; a module is far longer.
    def checked(data: bytes = b"") -> Any:
        if len(data) > 1024:
            raise AssertionError("the module was hashed although its index record is current")
        return sha256(data)

    return checked


async def test_a_damaged_index_record_costs_a_hash_not_a_compile(
    tmp_path: Path, project: Project
) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    await run_echo(home, project)
    [record] = sorted((home / "wasm-cache" / "index").iterdir())
    for broken in (b"", b"{not json", b'{"digest": "x", "info": {}}', b"[]"):
        record.write_bytes(broken)
        stats = await run_echo(home, project)
        assert (stats.compiled, stats.disk_hits) == (0, 1)
        assert b'"digest"' in record.read_bytes()


async def test_a_module_rebuilt_in_place_is_not_served_from_its_old_record(
    tmp_path: Path, project: Project
) -> None:
    project.wasm("t.echo", ECHO)
    home = tmp_path / "home"
    await run_echo(home, project)
    path = project.root / "t_echo.wasm"
    project.module("t_echo.wasm", returns('{"ok": {"v": 2}}'))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    async with Host(HostConfig(home=home), store=None) as host:
        result = await host.run(project.workflow([{"id": "w", "type": "t.echo"}]))
        assert result.nodes["w"].output == {"v": 2}
        assert runtime(host).machine().cache.stats.compiled == 1
