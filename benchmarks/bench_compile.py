"""Compile time and peak memory of chains of 1,000, 10,000 and 100,000 nodes.

Each size runs in a fresh process, so that its peak RSS (``ru_maxrss``) is its own: the process
reads the workflow from a JSON file, validates it and compiles it (every node reads the one
before it, so every upstream check runs), then builds the Rust plan of the same graph alone.
Prints one JSON object: per size the seconds of each phase, the peak RSS, and the ratio of the
whole compile to the Rust plan. The goal is linear growth, and 100,000 nodes under 5 s and 1 GB.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = (1_000, 10_000, 100_000)


def chain_document(n: int) -> dict[str, Any]:
    """``n`` transforms, each after the previous one and reading its output."""
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "core.transform", "with": {"value": 0}}]
    nodes += [
        {"id": f"n{i}", "type": "core.transform", "with": {"value": f"{{{{ n{i - 1}.value }}}}"}}
        for i in range(1, n)
    ]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]
    return {"version": 1, "id": "chain", "nodes": nodes, "edges": edges}


def measure(path: Path) -> dict[str, Any]:
    """In this process: load, validate and compile ``path``, then the Rust plan alone."""
    from polyhost import Catalog  # noqa: PLC0415 (imported in the measuring process only)
    from polyhost._limits import Limits  # noqa: PLC0415
    from polyhost._native import Plan  # noqa: PLC0415
    from polyhost.compile._checker import compile_workflow  # noqa: PLC0415
    from polyhost.compile._loading import load_workflow  # noqa: PLC0415

    catalog = Catalog.with_builtins()
    limits = Limits(max_document_bytes=1 << 30, max_document_values=50_000_000)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gc.collect()
    start = time.perf_counter()
    workflow = load_workflow(path, limits=limits)
    loaded = time.perf_counter()
    compiled = compile_workflow(workflow, catalog, limits=limits)
    done = time.perf_counter()
    assert len(compiled.nodes) == len(workflow.nodes)
    n = len(workflow.nodes)
    edges = [(i, i + 1, "out") for i in range(n - 1)]
    plan_start = time.perf_counter()
    plan = Plan(n, edges)
    assert plan.find_cycle() is None
    plan.topo_order()
    plan_s = time.perf_counter() - plan_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = done - start
    return {
        "nodes": n,
        "load_and_validate_s": round(loaded - start, 4),
        "compile_s": round(done - loaded, 4),
        "total_s": round(total, 4),
        "us_per_node": round(total / n * 1e6, 2),
        "rust_plan_s": round(plan_s, 5),
        "ratio_to_rust_plan": round(total / plan_s, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "rss_growth_mb": round((peak - base_rss) / 1024, 1),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        json.dump(measure(Path(sys.argv[2])), sys.stdout)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            path = Path(tmp) / f"chain{n}.json"
            path.write_text(json.dumps(chain_document(n)), encoding="utf-8")
            done = subprocess.run(
                [sys.executable, __file__, "--measure", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(done.stdout))
    first, last = results[0], results[-1]
    growth = last["total_s"] / first["total_s"]
    summary = {
        "benchmark": "compile a chain",
        "sizes": results,
        # 1.0 is linear: the time per node of the largest chain over that of the smallest.
        "per_node_growth": round(growth / (last["nodes"] / first["nodes"]), 2),
        "goal_100k": {"max_s": 5.0, "max_rss_mb": 1024},
    }
    json.dump(summary, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
