"""A streaming CSV query: filter on a number, group by a string, sum and count.

The file (5,000,000 rows x 8 columns of ints, floats and short strings, seeded) is made once
and cached in the temp folder. Contenders: `csv.query` called directly, the same node through
a one-node workflow run by `Host.run`, Python's csv module (timed on the first tenth of the
rows and scaled by ten), pandas, pyarrow, and polars eager and lazy (streaming engine). Each
contender runs in a fresh subprocess, so its peak RSS is its own; time is the best of three
runs in that process. Every contender's answer is checked against polyhost's. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROWS = 5_000_000
REPEATS = 3
THRESHOLD = 250.0
PYTHON_CSV_FRACTION = 10
COLUMNS = ["id", "user", "category", "city", "qty", "price", "score", "code"]
CACHE = Path(tempfile.gettempdir()) / "polyhost-bench-csv"
QUERY = f"where price > {THRESHOLD}, group by category, sum(qty) and count(*)"

Answer = dict[str, list[int]]


def data_file(rows: int = ROWS) -> Path:
    """The benchmark CSV, generated on first use."""
    path = CACHE / f"sales-{rows}-v1.csv"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    categories = [f"cat{i:02d}" for i in range(40)]
    cities = ["berlin", "paris", "rome", "madrid", "oslo", "lima", "quito", "cairo", "delhi"]
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        chunk: list[str] = []
        for i in range(rows):
            chunk.append(
                f"{i},{rng.randrange(1_000_000)},{rng.choice(categories)},"
                f"{rng.choice(cities)},{rng.randrange(1, 100)},{rng.random() * 500:.2f},"
                f"{rng.random():.4f},{rng.choice(cities)[:3]}{rng.randrange(100)}\n"
            )
            if len(chunk) == 100_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    partial.rename(path)
    return path


# -- contenders: each returns {category: [sum(qty), count]} ------------------------------


def run_polyhost(path: Path) -> Answer:
    from polyhost import _native  # noqa: PLC0415 (each contender imports only its own)

    out = _native.call_native(
        "csv.query",
        {
            "path": str(path),
            "where": f"price > {THRESHOLD}",
            "group_by": ["category"],
            "aggregate": {"qty": {"op": "sum", "column": "qty"}, "n": {"op": "count"}},
        },
        _native.CancelToken(),
    )
    return {r["category"]: [r["qty"], r["n"]] for r in out["rows"]}


def workflow_runner(path: Path) -> Callable[[], Answer]:
    from polyhost import Host, HostConfig  # noqa: PLC0415
    from polyhost.compile._parsing import parse_workflow  # noqa: PLC0415

    workflow = parse_workflow(
        {
            "version": 1,
            "id": "bench-csv",
            "nodes": [
                {
                    "id": "q",
                    "type": "csv.query",
                    "with": {
                        "path": str(path),
                        "where": f"price > {THRESHOLD}",
                        "group_by": ["category"],
                        "aggregate": {"qty": {"op": "sum", "column": "qty"}, "n": {"op": "count"}},
                    },
                }
            ],
        }
    )
    home = Path(tempfile.mkdtemp(prefix="polyhost-bench-home-"))
    config = HostConfig(home=home, allowed_roots=[path.parent])
    loop = asyncio.new_event_loop()
    host = Host(config)

    def run() -> Answer:
        result = loop.run_until_complete(host.run(workflow))
        if not result.ok:
            raise RuntimeError(f"the workflow failed: {result.error}")
        rows = result.nodes["q"].output["rows"]
        return {r["category"]: [r["qty"], r["n"]] for r in rows}

    return run


def run_python_csv(path: Path) -> Answer:
    groups: dict[str, list[int]] = {}
    limit = ROWS // PYTHON_CSV_FRACTION
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        cat, qty, price = (header.index(c) for c in ("category", "qty", "price"))
        for i, row in enumerate(reader):
            if i == limit:
                break
            if float(row[price]) > THRESHOLD:
                g = groups.setdefault(row[cat], [0, 0])
                g[0] += int(row[qty])
                g[1] += 1
    return groups


def run_pandas(path: Path) -> Answer:
    import pandas as pd  # noqa: PLC0415

    df = pd.read_csv(path, usecols=["category", "qty", "price"])
    out = df[df["price"] > THRESHOLD].groupby("category", sort=False)["qty"].agg(["sum", "size"])
    rows = zip(out.index, out["sum"], out["size"], strict=True)
    return {str(k): [int(s), int(n)] for k, s, n in rows}


def run_pyarrow(path: Path) -> Answer:
    import pyarrow.compute as pc  # noqa: PLC0415
    from pyarrow import csv as pacsv  # noqa: PLC0415

    table = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(include_columns=["category", "qty", "price"])
    )
    kept = table.filter(pc.greater(table["price"], THRESHOLD))
    out = kept.group_by("category").aggregate([("qty", "sum"), ([], "count_all")])
    return {
        c: [int(s), int(n)]
        for c, s, n in zip(
            out["category"].to_pylist(),
            out["qty_sum"].to_pylist(),
            out["count_all"].to_pylist(),
            strict=True,
        )
    }


def polars_answer(frame: Any) -> Answer:
    return {c: [int(s), int(n)] for c, s, n in frame.iter_rows()}


def run_polars_eager(path: Path) -> Answer:
    import polars as pl  # noqa: PLC0415

    df = pl.read_csv(path, columns=["category", "qty", "price"])
    out = (
        df.filter(pl.col("price") > THRESHOLD)
        .group_by("category")
        .agg(pl.col("qty").sum(), pl.len().alias("n"))
    )
    return polars_answer(out)


def run_polars_lazy(path: Path) -> Answer:
    import polars as pl  # noqa: PLC0415

    out = (
        pl.scan_csv(path)
        .filter(pl.col("price") > THRESHOLD)
        .group_by("category")
        .agg(pl.col("qty").sum(), pl.len().alias("n"))
        .collect(engine="streaming")
    )
    return polars_answer(out)


CONTENDERS: dict[str, Callable[[Path], Callable[[], Answer]]] = {
    "polyhost": lambda p: lambda: run_polyhost(p),
    "polyhost_workflow": workflow_runner,
    "python_csv": lambda p: lambda: run_python_csv(p),
    "pandas": lambda p: lambda: run_pandas(p),
    "pyarrow": lambda p: lambda: run_pyarrow(p),
    "polars_eager": lambda p: lambda: run_polars_eager(p),
    "polars_lazy_streaming": lambda p: lambda: run_polars_lazy(p),
}


def child(name: str, path: Path) -> dict[str, Any]:
    """Runs one contender REPEATS times in this process."""
    run = CONTENDERS[name](path)
    times = []
    answer: Answer = {}
    for _ in range(REPEATS):
        start = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - start)
    return {
        "times": times,
        "answer": answer,
        # Linux reports KiB.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(name: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(proc.stdout))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found = {"python": sys.version.split()[0]}
    for package in ("polyhost", "pandas", "pyarrow", "polars"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


def main() -> dict[str, Any]:
    path = data_file()
    size_mb = path.stat().st_size / 1e6
    out: dict[str, Any] = {
        "benchmark": "csv_query",
        "query": QUERY,
        "rows": ROWS,
        "columns": len(COLUMNS),
        "file_mb": round(size_mb, 1),
        "repeats": REPEATS,
        "cpus": os.cpu_count(),
        "versions": versions(),
        "contenders": {},
    }
    results = {name: measure(name, path) for name in CONTENDERS}
    reference = results["polyhost"].get("answer")
    for name, result in results.items():
        if "error" in result:
            out["contenders"][name] = {"error": result["error"]}
            continue
        scale = PYTHON_CSV_FRACTION if name == "python_csv" else 1
        best = min(result["times"]) * scale
        entry: dict[str, Any] = {
            "best_s": round(best, 4),
            "median_s": round(statistics.median(result["times"]) * scale, 4),
            "mb_per_s": round(size_mb / best, 1),
            "peak_rss_mb": round(result["peak_rss_mb"], 1),
        }
        if scale != 1:
            entry["note"] = (
                f"timed on the first {ROWS // scale:,} rows and multiplied by {scale}; "
                "its answer covers those rows only"
            )
        else:
            entry["answer_matches"] = result["answer"] == reference
        out["contenders"][name] = entry
    base = out["contenders"]["polyhost"]
    for entry in out["contenders"].values():
        if "best_s" in entry and "best_s" in base:
            entry["time_vs_polyhost"] = round(entry["best_s"] / base["best_s"], 2)
    out["goals"] = goals(out["contenders"])
    return out


def goals(c: dict[str, Any]) -> dict[str, Any]:
    def best(name: str) -> float:
        return float(c.get(name, {}).get("best_s", float("inf")))

    def rss(name: str) -> float:
        return float(c.get(name, {}).get("peak_rss_mb", float("inf")))

    ours = best("polyhost")
    polars = min(best("polars_eager"), best("polars_lazy_streaming"))
    polars_rss = min(rss("polars_eager"), rss("polars_lazy_streaming"))
    checks = {
        "python_csv_over_polyhost_min": 10.0,
        "python_csv_over_polyhost": round(best("python_csv") / ours, 1),
        "faster_than_pandas": ours < best("pandas"),
        "polyhost_over_best_polars_max": 1.5,
        "polyhost_over_best_polars": round(ours / polars, 2),
        "peak_rss_below_polars": rss("polyhost") < polars_rss,
        "answers_match": all(e.get("answer_matches", True) for e in c.values() if "best_s" in e),
    }
    checks["met"] = (
        checks["python_csv_over_polyhost"] >= 10
        and checks["faster_than_pandas"]
        and checks["polyhost_over_best_polars"] <= 1.5
        and checks["peak_rss_below_polars"]
        and checks["answers_match"]
    )
    return checks


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        json.dump(child(args.child[0], Path(args.child[1])), sys.stdout)
    else:
        json.dump(main(), sys.stdout, indent=2)
        print()
