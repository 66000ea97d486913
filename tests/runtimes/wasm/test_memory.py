"""Thousands of failing calls leave the host's memory flat: stores, instances, WASI contexts and
trap objects are all released."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from polyhost import NodeError
from polyhost.runtimes import WasmRuntime
from polyhost.runtimes._context import NodeContext
from polyhost.workflow._catalog import NodeType
from tests.runtimes.wasm.guests import UNREACHABLE, Project, command_printing

pytestmark = pytest.mark.anyio


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


async def fail_many(runtime: WasmRuntime, node_type: NodeType, times: int) -> None:
    for attempt in range(times):
        ctx = NodeContext("run", "wf", "w", node_type.type, attempt + 1, "key")
        with pytest.raises(NodeError) as caught:
            await runtime.execute(node_type, {"n": attempt}, ctx)
        assert caught.value.code in ("wasm_trap", "wasm_exit")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
@pytest.mark.parametrize(
    ("wat", "grants"),
    [
        (UNREACHABLE, {}),
        # A WASI command exiting non-zero: also a stdin file, captured stdout and stderr, a
        # preopened folder, and the exit status's own error object.
        (command_printing('{"partial": true}', stderr="failed", status=3), {"read": ["."]}),
    ],
    ids=["reactor", "command"],
)
async def test_ten_thousand_traps_keep_rss_flat(
    project: Project, tmp_path: Path, wat: str, grants: dict[str, object]
) -> None:
    module = project.module("trap.wasm", wat)
    node_type = NodeType(
        type="t.trap", runtime="wasm", module=module, base_dir=str(project.root), grants=grants
    )
    runtime = WasmRuntime(cache_dir=None)
    try:
        await fail_many(runtime, node_type, 1_000)  # warm up: caches, thread pool, allocator
        gc.collect()
        before = rss_kib()
        await fail_many(runtime, node_type, 10_000)
        gc.collect()
        grown = rss_kib() - before
    finally:
        await runtime.aclose()
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over 10,000 trapping calls"
