"""A run with sidecar nodes pauses in one process and is resumed in another, which starts its
own sidecars from the run's manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.grpc.conftest import ROOT, SidecarProject

POLYHOST = [sys.executable, "-m", "polyhost.cli"]
GO = [str(ROOT / "sandboxes/go/bin/testkit-sidecar")]
TS = ["node", str(ROOT / "sandboxes/node/dist/examples/testkit.js")]


def polyhost(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLYHOST_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        [*POLYHOST, *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


def test_a_paused_run_resumes_elsewhere_and_its_sidecar_nodes_run_once(
    project: SidecarProject, tmp_path: Path
) -> None:
    project.sidecar("gokit", command=GO)
    project.sidecar("tskit", command=TS)
    flow = project.workflow(
        [
            {"id": "before", "type": "go.echo", "with": {"step": 1}},
            {
                "id": "approve",
                "type": "core.approval",
                "with": {
                    "prompt": "go on?",
                    "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                },
            },
            {
                "id": "after",
                "type": "ts.echo",
                "with": {"before": "{{ before.params.step }}", "ok": "{{ approve.ok }}"},
            },
        ],
        [{"from": "before", "to": "approve"}, {"from": "approve", "to": "after"}],
    )
    home = tmp_path / "home"
    paused = polyhost(home, "run", str(flow), "--json")
    assert paused.returncode == 0, paused.stderr
    first = json.loads(paused.stdout)
    assert first["nodes"]["approve"]["status"] == "paused"
    assert first["nodes"]["before"]["status"] == "completed"
    assert first["nodes"]["after"]["status"] == "pending"

    resumed = polyhost(
        home, "runs", "resume", first["execution_id"], "--input", "ok=true", "--json"
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert result["nodes"]["before"]["attempts"] == 1  # kept from the first process, not re-run
    assert result["nodes"]["after"]["output"]["params"] == {"before": 1, "ok": True}
    assert result["nodes"]["after"]["output"]["context"]["run_id"] == first["execution_id"]
