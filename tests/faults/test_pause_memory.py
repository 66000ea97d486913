"""A paused run holds no process and no memory: once ``Host.run`` returns with status paused,
the outputs of the nodes before the pause live only in the store, and another host resumes the
run from there."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig, NodeStatus, RunStatus
from polyhost.compile._checker import compile_workflow
from polyhost.compile._parsing import parse_workflow

pytestmark = pytest.mark.anyio

WIDTH = 2000
BLOB = "x" * 1024
OUTPUT_BYTES = WIDTH * len(BLOB)  # 2 MiB of node outputs before the pause
APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}},
    "required": ["approved"],
}


def wide_document(width: int) -> dict[str, Any]:
    """``width`` transforms, each giving its own 1 KiB string, all feeding an approval gate."""
    nodes: list[dict[str, Any]] = [
        # Text around the template makes a new string per node, not one shared object.
        {"id": f"t{i}", "type": "core.transform", "with": {"value": f"{{{{ input.blob }}}}#{i}"}}
        for i in range(width)
    ]
    nodes.append(
        {
            "id": "gate",
            "type": "core.approval",
            "with": {"prompt": "ship it?", "schema": APPROVAL_SCHEMA},
        }
    )
    nodes.append(
        {"id": "summary", "type": "core.transform", "with": {"value": "{{ size(t0.value) }}"}}
    )
    edges = [{"from": f"t{i}", "to": "gate"} for i in range(width)]
    edges.append({"from": "gate", "to": "summary"})
    return {
        "version": 1,
        "id": f"wide{width}",
        "inputs": {"type": "object", "properties": {"blob": {"type": "string"}}},
        "nodes": nodes,
        "edges": edges,
        "outputs": {
            "approved": "{{ gate.approved }}",
            "first": "{{ t0.value }}",
            "last": f"{{{{ t{width - 1}.value }}}}",
            "size": "{{ summary.value }}",
        },
    }


async def run_until_paused(host: Host, compiled: Any) -> str:
    result = await host.run(compiled, {"blob": BLOB})
    assert result.status == RunStatus.PAUSED, result.error
    return result.execution_id


async def test_a_paused_run_releases_its_memory_and_resumes_in_another_host(
    tmp_path: Path,
) -> None:
    config = HostConfig(home=tmp_path / "home")
    host = Host(config)
    compiled = compile_workflow(parse_workflow(wide_document(WIDTH)), host.catalog)
    # Warm up on runs of the same workflow: imports, caches, the store's connection and writer,
    # the worker threads (one run is not enough for all of them to reach their steady size).
    for _ in range(2):
        await run_until_paused(host, compiled)
    gc.collect()

    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        run_id = await run_until_paused(host, compiled)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    growth = after.compare_to(before, "lineno")
    retained = sum(stat.size_diff for stat in growth)
    top = "\n".join(str(stat) for stat in growth[:8])
    assert retained < OUTPUT_BYTES // 10, (
        f"{retained} bytes still held after the run paused ({OUTPUT_BYTES} bytes of outputs); "
        f"largest growth:\n{top}"
    )
    assert host.active_runs == []
    await host.aclose()

    async with Host(config) as other:
        result = await other.resume(run_id, {"approved": True})
        assert result.status == RunStatus.COMPLETED, result.error
        assert result.execution_id == run_id
        assert result.outputs == {
            "approved": True,
            "first": f"{BLOB}#0",
            "last": f"{BLOB}#{WIDTH - 1}",
            "size": len(BLOB) + 2,
        }
        assert result.nodes["gate"].output == {"approved": True}
        assert len(result.nodes) == WIDTH + 2
        assert all(node.status == NodeStatus.COMPLETED for node in result.nodes.values())
