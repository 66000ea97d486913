"""The demo that `make demo` runs, through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[2] / "examples" / "demo" / "demo.yaml"
POLYHOST = Path(sys.executable).parent / "polyhost"


def test_the_demo_runs_every_path_it_shows(tmp_path: Path) -> None:
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(POLYHOST), "run", str(DEMO), "--input", "name=tester", "--json"],
        capture_output=True,
        text=True,
        env=env,
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
    }
    nodes = result["nodes"]
    assert nodes["quiet"]["status"] == "skipped"
    assert nodes["risky"]["status"] == "failed"
    assert nodes["flaky"]["attempts"] == 2
