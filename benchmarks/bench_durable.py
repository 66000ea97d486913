"""Durable runs: what committing every node's result before its dependents start costs per node
(no-op python nodes in a 1,000-node chain and a 1,000-wide fan-out, store on against store off),
the database's size per node, and how long one host takes to resume 1,000 paused runs, one
after another and 32 at a time. Prints one JSON object; ``--help`` lists the options."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import chain_doc, fanout_doc, noop_catalog, per_node, run_and_print

from polyhost import Catalog, Host, HostConfig, RunStatus
from polyhost.compile._checker import compile_workflow
from polyhost.compile._parsing import parse_workflow

N = 1000
REPEATS = 5
RUNS = 1000
RESUME_REPEATS = 3
AT_ONCE = 32
# The goals (docs/design.md, "The store").
CHAIN_US_PER_NODE_MAX = 60.0
FANOUT_RATIO_MAX = 1.5
RESUME_S_MAX = 1.0
DB_BYTES_PER_NODE_MAX = 3 * 1024


def approval_doc() -> dict[str, Any]:
    """A step, an approval gate, a step reading the approval: the smallest pausing workflow."""
    schema = {
        "type": "object",
        "properties": {"approved": {"type": "boolean"}},
        "required": ["approved"],
    }
    return {
        "version": 1,
        "id": "approve",
        "nodes": [
            {"id": "prepare", "type": "core.transform", "with": {"value": 1}},
            {"id": "gate", "type": "core.approval", "with": {"prompt": "go?", "schema": schema}},
            {"id": "done", "type": "core.transform", "with": {"value": "{{ gate.approved }}"}},
        ],
        "edges": [{"from": "prepare", "to": "gate"}, {"from": "gate", "to": "done"}],
        "outputs": {"approved": "{{ done.value }}"},
    }


async def timed_run(host: Host, compiled: Any) -> float:
    begin = time.perf_counter()
    result = await host.run(compiled)
    elapsed = time.perf_counter() - begin
    assert result.ok, result.error
    return elapsed


async def overhead(catalog: Catalog, home: Path) -> dict[str, Any]:
    """Per-node cost with the store on (durable) and off, and their ratio."""
    config = HostConfig(home=home, concurrency=N + 1)
    hosts = {
        "durable": Host(config, catalog=catalog),
        "store_off": Host(config, catalog=catalog, store=None),
    }
    out: dict[str, Any] = {}
    for shape, document in {"chain": chain_doc(N), "fanout": fanout_doc(N)}.items():
        compiled = compile_workflow(parse_workflow(document), catalog)
        nodes = len(document["nodes"])
        entry: dict[str, Any] = {"nodes": nodes}
        for name, host in hosts.items():
            await timed_run(host, compiled)  # warm-up
            times = [await timed_run(host, compiled) for _ in range(REPEATS)]
            entry[name] = per_node(times, nodes)
        entry["durable_ratio"] = round(
            entry["durable"]["us_per_node"] / entry["store_off"]["us_per_node"], 2
        )
        out[shape] = entry
    for host in hosts.values():
        await host.aclose()
    out["db_bytes_per_node"] = db_bytes_per_node(home)
    return out


def db_bytes_per_node(home: Path) -> float:
    """The run database's size over the node rows it holds (after closing: no write-ahead log)."""
    path = home / "polyhost.db"
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM node_results").fetchone()
    size = sum(p.stat().st_size for p in home.glob("polyhost.db*"))
    return round(size / max(rows, 1), 1)


async def pause_many(host: Host, compiled: Any, count: int) -> tuple[list[str], float]:
    begin = time.perf_counter()
    run_ids = []
    for _ in range(count):
        result = await host.run(compiled)
        assert result.status == RunStatus.PAUSED, result.error
        run_ids.append(result.execution_id)
    return run_ids, time.perf_counter() - begin


async def resume_one(host: Host, run_id: str) -> None:
    result = await host.resume(run_id, {"approved": True})
    assert result.ok and result.outputs == {"approved": True}, (result.status, result.error)


async def resume_sequentially(host: Host, run_ids: list[str]) -> float:
    begin = time.perf_counter()
    for run_id in run_ids:
        await resume_one(host, run_id)
    return time.perf_counter() - begin


async def resume_together(host: Host, run_ids: list[str], at_once: int) -> float:
    limit = anyio.CapacityLimiter(at_once)

    async def resume_limited(run_id: str) -> None:
        async with limit:
            await resume_one(host, run_id)

    begin = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for run_id in run_ids:
            tg.start_soon(resume_limited, run_id)
    return time.perf_counter() - begin


async def resumes(home: Path) -> dict[str, Any]:
    """Pause RUNS runs at an approval gate, then time resuming them all."""
    out: dict[str, Any] = {"runs": RUNS, "repeats": RESUME_REPEATS}
    async with Host(HostConfig(home=home)) as host:
        compiled = host.compile(parse_workflow(approval_doc()))
        warm, _ = await pause_many(host, compiled, 20)
        await resume_together(host, warm, AT_ONCE)
        modes = {
            "sequential": resume_sequentially,
            f"{AT_ONCE}_at_once": lambda h, ids: resume_together(h, ids, AT_ONCE),
        }
        pausing: list[float] = []
        for mode, resume_all in modes.items():
            times = []
            for _ in range(RESUME_REPEATS):
                run_ids, paused_in = await pause_many(host, compiled, RUNS)
                pausing.append(paused_in)
                times.append(await resume_all(host, run_ids))
            best = min(times)
            out[mode] = {
                "best_s": round(best, 4),
                "median_s": round(statistics.median(times), 4),
                "ms_per_run": round(best / RUNS * 1e3, 3),
                "runs_per_s": round(RUNS / best),
            }
        out["pause_ms_per_run"] = round(min(pausing) / RUNS * 1e3, 3)
    return out


async def main() -> dict[str, Any]:
    catalog = noop_catalog()
    out: dict[str, Any] = {"benchmark": "durable_runs", "nodes": N, "repeats": REPEATS}
    with tempfile.TemporaryDirectory() as tmp:
        out.update(await overhead(catalog, Path(tmp) / "overhead"))
        out["resume"] = await resumes(Path(tmp) / "resume")
    resume_times = {
        mode: out["resume"][mode]["best_s"] for mode in ("sequential", f"{AT_ONCE}_at_once")
    }
    goals: dict[str, Any] = {
        "chain_durable_us_per_node_max": CHAIN_US_PER_NODE_MAX,
        "fanout_durable_ratio_max": FANOUT_RATIO_MAX,
        "resume_1000_runs_s_max": RESUME_S_MAX,
        "db_bytes_per_node_max": DB_BYTES_PER_NODE_MAX,
        "chain_met": out["chain"]["durable"]["us_per_node"] <= CHAIN_US_PER_NODE_MAX,
        "fanout_ratio_met": out["fanout"]["durable_ratio"] <= FANOUT_RATIO_MAX,
        "resume_met": {mode: seconds < RESUME_S_MAX for mode, seconds in resume_times.items()},
        "db_size_met": out["db_bytes_per_node"] <= DB_BYTES_PER_NODE_MAX,
    }
    goals["met"] = (
        goals["chain_met"]
        and goals["fanout_ratio_met"]
        and all(goals["resume_met"].values())
        and goals["db_size_met"]
    )
    out["goals"] = goals
    return out


def parse_args() -> None:
    """Set the sizes from the command line (the defaults are the ones the goals are for)."""
    global N, REPEATS, RUNS, RESUME_REPEATS
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=N, help="nodes per chain and fan-out")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per shape")
    parser.add_argument("--runs", type=int, default=RUNS, help="paused runs to resume")
    parser.add_argument(
        "--resume-repeats", type=int, default=RESUME_REPEATS, help="timed resumes of them all"
    )
    args = parser.parse_args()
    N, REPEATS, RUNS, RESUME_REPEATS = args.nodes, args.repeats, args.runs, args.resume_repeats


if __name__ == "__main__":
    parse_args()
    run_and_print(main)
