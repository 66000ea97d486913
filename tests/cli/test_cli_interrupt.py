"""Ctrl-C (SIGINT) on `polyhost run` cancels the run cleanly and records it as cancelled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.helpers.cli import POLYHOST, wait_until_running

SLOW = """
version: 1
nodes:
  - {id: first, type: core.transform, with: {value: 1}}
  - {id: slow, type: core.wait, with: {duration: 40s}}
  - {id: after, type: core.log, with: {message: never}}
edges:
  - {from: first, to: slow}
  - {from: slow, to: after}
"""


def test_sigint_cancels_the_run_and_the_history_says_so(tmp_path: Path) -> None:
    flow = tmp_path / "slow.yaml"
    flow.write_text(SLOW)
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [str(POLYHOST), "run", str(flow), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    # Wait until the run is recorded as running, then interrupt it.
    if not wait_until_running(env):
        proc.kill()
        _, stderr = proc.communicate()  # closes the pipes too
        raise AssertionError(f"the run never showed up as running: {stderr}")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    result = json.loads(stdout)
    assert result["status"] == "cancelled"
    assert result["nodes"]["first"]["status"] == "completed"
    assert result["nodes"]["slow"]["status"] == "cancelled"
    assert "Traceback" not in stderr
    shown = subprocess.run(
        [str(POLYHOST), "runs", "show", result["execution_id"], "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(shown.stdout)["status"] == "cancelled"
