"""`polyhost serve` takes over a run whose host was killed, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.helpers.cli import POLYHOST, listed_runs, wait_until_running

FLOW = """
version: 1
nodes:
  - {id: first, type: core.transform, with: {value: 20}}
  - {id: slow, type: core.wait, with: {duration: 2s}}
  - {id: last, type: core.transform, with: {value: "{{ first.value + 1 }}"}}
edges:
  - {from: first, to: slow}
  - {from: slow, to: last}
outputs: {answer: "{{ last.value }}"}
"""


def test_serve_recovers_a_killed_run_and_stops_on_sigterm(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW)
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path / "home")}
    victim = subprocess.Popen(
        [str(POLYHOST), "run", str(flow), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert wait_until_running(env), "the run never showed up as running"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    [orphan] = listed_runs(env)
    assert orphan["status"] == "running"  # nobody finished it

    server = subprocess.Popen(
        [str(POLYHOST), "serve", "--poll", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and listed_runs(env)[0]["status"] != "completed":
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
    assert f"completed  run {orphan['execution_id']}" in stdout
    shown = subprocess.run(
        [str(POLYHOST), "runs", "show", str(orphan["execution_id"]), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result = json.loads(shown.stdout)
    assert result["status"] == "completed"
    assert result["outputs"] == {"answer": 21}
    assert result["nodes"]["first"]["attempts"] == 1
