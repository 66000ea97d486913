"""Modules too big for the host's limits, and guests blocked where no epoch reaches them.

Large modules are refused from their sections' counts before anything is compiled, at compile
time and at run time; a module too big for an instance-pool slot goes to the engine without a
pool without being compiled for the pool first, so a warm start of it costs milliseconds. A
WASI guest blocked reading a FIFO times out and never keeps its host process alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wasmtime import wat2wasm

from polyhost import Catalog, CompileError, Host, HostConfig, NodeContext, NodeError, RunStatus
from polyhost._limits import Limits
from polyhost.runtimes import WasmRuntime
from tests.runtimes.wasm.guests import Project, returns

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]
HOSTILE = ROOT / "wasm-nodes" / "build" / "hostile"


def many_functions(count: int, *, exported: bool) -> str:
    """A reactor with ``count`` extra one-instruction functions (each exported, if asked)."""
    export = '(export "f{i}") ' if exported else ""
    body = "\n".join(
        f"(func $f{i} {export.format(i=i)}(result i32) (i32.const {i}))" for i in range(count)
    )
    return returns('{"ok": {"fine": true}}', extra=body)


@pytest.mark.parametrize(
    ("limit", "value", "exported"),
    [
        ("max_wasm_functions", 1_000, False),
        ("max_wasm_exports", 1_000, True),
        ("max_wasm_module_bytes", 4_096, False),
    ],
)
async def test_a_module_past_a_limit_is_refused_at_compile_time_by_name(
    project: Project, tmp_path: Path, limit: str, value: int, exported: bool
) -> None:
    project.wasm("t.big", many_functions(2_000, exported=exported))
    flow = project.workflow([{"id": "w", "type": "t.big"}])
    config = HostConfig(home=tmp_path / "home", limits=Limits(**{limit: value}))
    async with Host(config, store=None) as host:
        with pytest.raises(CompileError) as caught:
            await host.run(flow)
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.node, diagnostic.field) == (
        "invalid_wasm_module",
        "w",
        "type",
    )
    assert "node type t.big" in diagnostic.message and limit in diagnostic.message


async def test_a_module_past_a_limit_fails_its_node_at_run_time_without_compiling(
    project: Project, tmp_path: Path
) -> None:
    project.wasm("t.big", many_functions(3_000, exported=False))
    catalog = Catalog.with_builtins()
    catalog.load_manifest(project.root / "polyhost.toml")
    node_type = catalog.get("t.big")
    assert node_type is not None
    runtime = WasmRuntime(limits=Limits(max_wasm_functions=1_000))
    ctx = NodeContext(
        run_id="r", workflow_id="f", node_id="w", node_type="t.big", attempt=1, idempotency_key="k"
    )
    try:
        with pytest.raises(NodeError) as caught:
            await runtime.execute(node_type, {}, ctx)
        assert all(m.cache.stats.compiled == 0 for m in runtime._machines.values())
    finally:
        await runtime.aclose()
    error = caught.value
    assert (error.code, error.node, error.field) == ("invalid_wasm_module", "w", "type")
    assert "max_wasm_functions" in error.message and "node type t.big" in error.message


def test_a_module_too_big_for_a_pool_slot_loads_in_milliseconds_once_cached(
    tmp_path: Path,
) -> None:
    # 35,000 exported functions need more instance state than a pool slot holds: such a module
    # used to be compiled for the pooled engine in vain at every process start (6-8 s a run for
    # 100,000 functions).
    project = Project(tmp_path / "project")
    project.wasm("t.wide", many_functions(35_000, exported=True), limits={"timeout": "5s"})
    env = {**os.environ, "POLYHOST_LIMIT_MAX_WASM_EXPORTS": "100000"}
    flow = project.workflow([{"id": "w", "type": "t.wide"}])
    script = (
        "import anyio, json, time\n"
        "from polyhost import Host, HostConfig\n"
        "async def main():\n"
        f"    async with Host(HostConfig(home={str(tmp_path / 'home')!r}), store=None) as host:\n"
        "        begin = time.perf_counter()\n"
        f"        result = await host.run({str(flow)!r})\n"
        "        seconds = time.perf_counter() - begin\n"
        "        runtime = host.router.adapter('wasm')\n"
        "        compiled = sum(m.cache.stats.compiled for m in runtime._machines.values())\n"
        "        print(json.dumps({'status': result.status.value, 'seconds': seconds,\n"
        "                          'compiled': compiled}))\n"
        "anyio.run(main)\n"
    )
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            cwd=ROOT,
            timeout=120,
            check=True,
            env=env,
        )
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    cold, warm = runs
    assert cold["status"] == warm["status"] == "completed"
    assert cold["compiled"] == 1  # for the engine without a pool only
    assert warm["compiled"] == 0
    assert warm["seconds"] < 0.5, runs


def test_a_guest_blocked_on_a_fifo_times_out_and_its_host_exits(tmp_path: Path) -> None:
    project = Project(tmp_path / "project")
    (project.root / "data").mkdir()
    os.mkfifo(project.root / "data" / "pipe")  # nobody ever writes to it
    project.node_type(
        "t.reader",
        str(HOSTILE / "read_file.wasm"),
        grants={"read": ["data"]},
        limits={"timeout": "300ms"},
    )
    flow = project.workflow([{"id": "w", "type": "t.reader", "with": {"path": "/data/pipe"}}])
    script = (
        "import anyio, json\n"
        "from polyhost import Host, HostConfig\n"
        "async def main():\n"
        f"    async with Host(HostConfig(home={str(tmp_path / 'home')!r}), store=None) as host:\n"
        f"        result = await host.run({str(flow)!r})\n"
        "        print(json.dumps(result.nodes['w'].error), flush=True)\n"
        "anyio.run(main)\n"
    )
    begin = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, cwd=ROOT, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.splitlines()[-1])
    assert (error["code"], error["field"]) == ("wasm_timeout", "limits.timeout")
    assert time.monotonic() - begin < 10
    assert b"Traceback" not in done.stderr and b"increment_epoch" not in done.stderr, done.stderr


async def test_a_host_checks_modules_with_its_own_limits(project: Project, tmp_path: Path) -> None:
    project.wasm("t.small", many_functions(10, exported=False))
    flow = project.workflow([{"id": "w", "type": "t.small"}])
    async with Host(HostConfig(home=tmp_path / "home"), store=None) as host:
        result = await host.run(flow)
    assert result.status is RunStatus.COMPLETED, result.error
    assert wat2wasm(many_functions(1, exported=False))[:4] == b"\0asm"
