"""Engine overhead per node: no-op python nodes in a 1,000-node chain and a 1,000-wide fan-out,
with the store off, on with background commits, and on with durable commits (each result
committed before its dependents start), against the floor of awaiting the same function from a
plain asyncio loop. Prints one JSON object; ``--help`` lists the options."""

from __future__ import annotations

import argparse
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
# The goals (docs/design.md, "The store"), in µs per node and as ratios of best times.
CHAIN_BACKGROUND_US_MAX = 35.0
CHAIN_DURABLE_US_MAX = 60.0
FANOUT_BACKGROUND_US_MAX = 50.0
FANOUT_STORE_OFF_NODES_PER_S_MIN = 20000
FANOUT_DURABLE_OVER_STORE_OFF_MAX = 1.5


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
    chain, fanout = out["chain"], out["fanout"]
    ratio = fanout["store_durable"]["best_s"] / fanout["store_off"]["best_s"]
    out["goals"] = {
        "chain_background_us_per_node_max": CHAIN_BACKGROUND_US_MAX,
        "chain_durable_us_per_node_max": CHAIN_DURABLE_US_MAX,
        "fanout_background_us_per_node_max": FANOUT_BACKGROUND_US_MAX,
        "fanout_store_off_nodes_per_s_min": FANOUT_STORE_OFF_NODES_PER_S_MIN,
        "durable_fanout_over_store_off_max": FANOUT_DURABLE_OVER_STORE_OFF_MAX,
        "durable_fanout_over_store_off": round(ratio, 2),
        "met": chain["store_background"]["us_per_node"] <= CHAIN_BACKGROUND_US_MAX
        and chain["store_durable"]["us_per_node"] <= CHAIN_DURABLE_US_MAX
        and fanout["store_background"]["us_per_node"] <= FANOUT_BACKGROUND_US_MAX
        and fanout["store_off"]["nodes_per_s"] >= FANOUT_STORE_OFF_NODES_PER_S_MIN
        and ratio <= FANOUT_DURABLE_OVER_STORE_OFF_MAX,
    }
    return out


def parse_args() -> None:
    """Set the sizes from the command line (the defaults are the ones the goals are for)."""
    global N, REPEATS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=N, help="nodes per chain and fan-out")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per shape")
    args = parser.parse_args()
    N, REPEATS = args.nodes, args.repeats


if __name__ == "__main__":
    parse_args()
    run_and_print(main)
