"""What the benchmarks share: workflow shapes, the no-op node, and how a benchmark runs."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from polyhost import Catalog


async def noop(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The cheapest possible node: what is left is the engine's own cost."""
    return {}


def noop_catalog() -> Catalog:
    """The built-in catalog plus ``bench.noop``."""
    catalog = Catalog.with_builtins()
    catalog.node("bench.noop")(noop)
    return catalog


def chain_doc(n: int) -> dict[str, Any]:
    """``n`` no-op nodes, each after the previous one."""
    nodes = [{"id": f"n{i}", "type": "bench.noop"} for i in range(n)]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]
    return {"version": 1, "id": "chain", "nodes": nodes, "edges": edges}


def fanout_doc(n: int) -> dict[str, Any]:
    """A root and ``n`` no-op nodes after it, all ready at once."""
    nodes = [{"id": "root", "type": "bench.noop"}]
    nodes += [{"id": f"n{i}", "type": "bench.noop"} for i in range(n)]
    edges = [{"from": "root", "to": f"n{i}"} for i in range(n)]
    return {"version": 1, "id": "fanout", "nodes": nodes, "edges": edges}


def per_node(times: list[float], nodes: int) -> dict[str, Any]:
    """The best and median of repeated timings of a workflow of ``nodes`` nodes, per node too."""
    best = min(times)
    return {
        "best_s": round(best, 5),
        "median_s": round(statistics.median(times), 5),
        "us_per_node": round(best / nodes * 1e6, 2),
        "nodes_per_s": round(nodes / best),
    }


def run_and_print(main: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> None:
    """Run ``main`` on uvloop when installed (asyncio otherwise) and print its JSON object."""
    try:
        import uvloop  # noqa: PLC0415 (optional)

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    json.dump(runner(main()), sys.stdout, indent=2)
    print()
