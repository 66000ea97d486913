"""The demo that `make demo` runs, through the real command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[2] / "examples" / "demo" / "demo.yaml"
POLYHOST = Path(sys.executable).parent / "polyhost"


def expected_regions() -> list[tuple[str, float, int]]:
    """The demo's CSV query, computed with the csv module: high-priority orders over 20."""
    totals: dict[str, list[float]] = {}
    with (DEMO.parent / "data" / "orders.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["priority"] == "high" and float(row["amount"]) > 20:
                totals.setdefault(row["region"], []).append(float(row["amount"]))
    ranked = sorted(totals.items(), key=lambda item: -sum(item[1]))
    return [(region, sum(amounts), len(amounts)) for region, amounts in ranked]


def test_the_demo_runs_every_path_it_shows(tmp_path: Path) -> None:
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(POLYHOST), "run", str(DEMO), "--input", "name=tester", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=DEMO.parents[2],  # the demo's CSV path is relative to the repository
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert result["outputs"] == {
        "greeting": "Hello, tester!",
        "score": 3112,
        "high": True,
        "flaky_attempts": 2,
        "recovered": "recovered: the risky step failed on purpose",
        "top_region": expected_regions()[0][0],
        "regions": [
            f"#{i} {region}: {count} orders"
            for i, (region, _, count) in enumerate(expected_regions(), 1)
        ],
        "words": 4,
        "wasm_words": 5,
        "wasm_greeting": "Hello, tester!",
        "paris_london_km": 343,
        "slug": "hello-tester-paris-to-london-343-km",
    }
    nodes = result["nodes"]
    assert nodes["quiet"]["status"] == "skipped"
    assert nodes["risky"]["status"] == "failed"
    assert nodes["flaky"]["attempts"] == 2
