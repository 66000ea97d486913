"""Engine overhead per node: no-op python nodes in a 1,000-node chain and a 1,000-wide fan-out,
with the store off, on with background commits, and on with durable commits (each result
committed before its dependents start), against the floor of awaiting the same function from a
plain asyncio loop. Prints one JSON object."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import chain_doc, fanout_doc, noop, noop_catalog, per_node, run_and_print

from polyhost import Host, HostConfig
from polyhost.compile._checker import compile_workflow
from polyhost.compile._parsing import parse_workflow

N = 1000
REPEATS = 5


async def floor(n: int) -> float:
    """Awaiting the handler n times from a plain loop: the least any engine could cost."""
    begin = time.perf_counter()
    for _ in range(n):
        await noop({}, None)
    return time.perf_counter() - begin


async def floor_tasks(n: int) -> float:
    """n concurrent tasks, each awaiting the handler: the floor for a fan-out."""
    begin = time.perf_counter()
    await asyncio.gather(*(noop({}, None) for _ in range(n)))
    return time.perf_counter() - begin


async def measure(host: Host, compiled: Any) -> float:
    begin = time.perf_counter()
    result = await host.run(compiled)
    elapsed = time.perf_counter() - begin
    assert result.ok, result.error
    return elapsed


async def main() -> dict[str, Any]:
    catalog = noop_catalog()
    shapes = {"chain": chain_doc(N), "fanout": fanout_doc(N)}
    out: dict[str, Any] = {"benchmark": "engine_overhead", "nodes": N, "repeats": REPEATS}
    with tempfile.TemporaryDirectory() as tmp:
        config = HostConfig(home=Path(tmp), concurrency=N + 1)
        hosts = {
            "store_durable": Host(config, catalog=catalog),
            "store_background": Host(
                config.model_copy(update={"durable_commits": False}), catalog=catalog
            ),
            "store_off": Host(config, catalog=catalog, store=None),
        }
        for shape, document in shapes.items():
            compiled = compile_workflow(parse_workflow(document), catalog)
            nodes = len(document["nodes"])
            base = await (floor(nodes) if shape == "chain" else floor_tasks(nodes))
            base = min(
                [base]
                + [
                    await floor(nodes) if shape == "chain" else await floor_tasks(nodes)
                    for _ in range(REPEATS)
                ]
            )
            entry: dict[str, Any] = {"floor_us_per_node": round(base / nodes * 1e6, 3)}
            for name, host in hosts.items():
                await measure(host, compiled)  # warm-up
                times = [await measure(host, compiled) for _ in range(REPEATS)]
                best = min(times)
                entry[name] = {
                    **per_node(times, nodes),
                    "overhead_us_per_node": round((best - base) / nodes * 1e6, 2),
                    "ratio_to_floor": round(best / base, 1),
                }
            out[shape] = entry
        for host in hosts.values():
            await host.aclose()
    out["goals"] = {
        "store_on_us_per_node_max": 50,
        "fanout_store_off_nodes_per_s_min": 20000,
        "durable_fanout_over_store_off_max": 2.0,
        "durable_fanout_over_store_off": round(
            out["fanout"]["store_durable"]["best_s"] / out["fanout"]["store_off"]["best_s"], 2
        ),
        "met": out["chain"]["store_background"]["us_per_node"] <= 50
        and out["fanout"]["store_background"]["us_per_node"] <= 50
        and out["fanout"]["store_off"]["nodes_per_s"] >= 20000
        and out["fanout"]["store_durable"]["best_s"] <= 2 * out["fanout"]["store_off"]["best_s"],
    }
    return out


if __name__ == "__main__":
    run_and_print(main)
