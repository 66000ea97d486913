"""Watching the run history of a `polyhost` process from the outside, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

POLYHOST = Path(sys.executable).parent / "polyhost"


def listed_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    """`polyhost runs list --json`, newest first; empty while there is no history yet."""
    listing = subprocess.run(
        [str(POLYHOST), "runs", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return json.loads(listing.stdout) if listing.returncode == 0 else []


def wait_until_running(env: dict[str, str], timeout: float = 30.0) -> bool:
    """Poll until the newest run is recorded as running; False when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = listed_runs(env)
        if runs and runs[0]["status"] == "running":
            return True
        time.sleep(0.05)
    return False
