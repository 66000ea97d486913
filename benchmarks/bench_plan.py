"""Plan building, ordering and scheduling on a 100,000-node, 300,000-edge DAG.

Each contender builds the graph from the same Python edge list, orders it and, where it
has a scheduler, drives a full run wave by wave (every ready node completes at once).
Prints one JSON object: best-of-3 seconds per contender and their ratios to polyhost.
"""

from __future__ import annotations

import gc
import importlib
import json
import random
import sys
import time
from collections.abc import Callable
from graphlib import TopologicalSorter
from types import ModuleType
from typing import Any

from polyhost import _native

NODES = 100_000
EDGES = 300_000
SEED = 20240601
REPEAT = 3

Edge = tuple[int, int, str]


def make_dag(nodes: int, edges: int, seed: int) -> list[Edge]:
    """Distinct random edges, each from a lower to a higher index."""
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()
    while len(seen) < edges:
        a = rng.randrange(nodes)
        b = rng.randrange(nodes)
        if a != b:
            seen.add((a, b) if a < b else (b, a))
    return [(a, b, "out") for a, b in sorted(seen, key=lambda _: rng.random())]


def relabel(nodes: int, edges: list[Edge], seed: int) -> list[Edge]:
    """The same DAG with node indices shuffled, so edges no longer go low to high."""
    perm = list(range(nodes))
    random.Random(seed).shuffle(perm)
    return [(perm[a], perm[b], p) for a, b, p in edges]


def optional(module: str) -> ModuleType | None:
    """A peer from the bench extra, or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"{module} not installed: skipped", file=sys.stderr)
        return None


def best_of(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEAT):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_polyhost(nodes: int, edges: list[Edge]) -> None:
    plan = _native.Plan(nodes, edges)
    order = plan.topo_order()
    assert len(order) == nodes
    run = plan.new_run()
    ready = run.start()
    while ready:
        ready, _skipped = run.complete_many(ready, "out")
    assert run.is_finished()


def run_graphlib(nodes: int, edges: list[Edge]) -> None:
    sorter: TopologicalSorter[int] = TopologicalSorter()
    for node in range(nodes):
        sorter.add(node)
    for a, b, _port in edges:
        sorter.add(b, a)
    sorter.prepare()
    done = 0
    while sorter.is_active():
        ready = sorter.get_ready()
        done += len(ready)
        sorter.done(*ready)
    assert done == nodes


def run_networkx(nx: ModuleType, nodes: int, edges: list[Edge]) -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(nodes))
    graph.add_edges_from((a, b) for a, b, _port in edges)
    order = list(nx.topological_sort(graph))
    assert len(order) == nodes


def run_rustworkx(rx: ModuleType, nodes: int, edges: list[Edge]) -> None:
    graph = rx.PyDiGraph()
    graph.add_nodes_from(range(nodes))
    graph.add_edges_from(edges)
    order = rx.topological_sort(graph)
    assert len(order) == nodes
    if hasattr(rx, "TopologicalSorter"):
        sorter = rx.TopologicalSorter(graph)
        done = 0
        while sorter.is_active():
            ready = sorter.get_ready()
            done += len(ready)
            sorter.done(ready)
        assert done == nodes


def main() -> None:
    edges = make_dag(NODES, EDGES, SEED)
    shuffled = relabel(NODES, edges, SEED + 1)
    contenders: dict[str, Callable[[], None]] = {
        "polyhost": lambda: run_polyhost(NODES, edges),
        "polyhost_relabelled": lambda: run_polyhost(NODES, shuffled),
        "graphlib": lambda: run_graphlib(NODES, edges),
    }
    nx = optional("networkx")
    if nx is not None:
        contenders["networkx"] = lambda: run_networkx(nx, NODES, edges)
    rx = optional("rustworkx")
    if rx is not None:
        contenders["rustworkx"] = lambda: run_rustworkx(rx, NODES, edges)
    rustworkx_scheduled = rx is not None and hasattr(rx, "TopologicalSorter")

    results: dict[str, dict[str, Any]] = {}
    for name, fn in contenders.items():
        results[name] = {"seconds": round(best_of(fn), 6)}
    results["polyhost"]["does"] = "construct + topo_order + full scheduled run"
    results["polyhost_relabelled"]["does"] = "same, node indices shuffled"
    results["graphlib"]["does"] = "construct + prepare + get_ready/done loop"
    if "networkx" in results:
        results["networkx"]["does"] = "DiGraph construct + topological_sort"
    if "rustworkx" in results:
        results["rustworkx"]["does"] = "PyDiGraph construct + topological_sort" + (
            " + TopologicalSorter run" if rustworkx_scheduled else ""
        )

    base = results["polyhost"]["seconds"]
    ratios = {
        f"{name}_over_polyhost": round(r["seconds"] / base, 2)
        for name, r in results.items()
        if name != "polyhost"
    }
    print(
        json.dumps(
            {
                "benchmark": "plan_100k",
                "nodes": NODES,
                "edges": len(edges),
                "repeat": REPEAT,
                "results": results,
                "ratios": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
