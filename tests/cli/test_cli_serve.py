"""`polyhost serve` takes over a run whose host was killed, and stops cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
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
    try:
        assert wait_until_running(env), "the run never showed up as running"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    [orphan] = listed_runs(env)
    assert orphan["status"] == "running"  # nobody finished it

    server = subprocess.Popen(
        [str(POLYHOST), "serve", "--poll", "0.2", "--port", "0"],
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


_NODES = """\
import os
import signal
from pathlib import Path


def die_once(params, ctx):
    # The first call kills its own host, as a crash or an OOM killer would.
    flag = Path(params["flag"])
    if not flag.exists():
        flag.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return {}


def surrogate(params, ctx):
    return {"text": "a\\ud83d"}
"""

_MANIFEST = """\
[[nodes]]
type = "acme.die_once"
runtime = "python"
handler = "acme_nodes:die_once"

[[nodes]]
type = "acme.surrogate"
runtime = "python"
handler = "acme_nodes:surrogate"
"""


def _statuses(env: dict[str, str]) -> dict[str, str]:
    """Every run's status, read from the database (cheaper than a command to poll with)."""
    db = Path(env["POLYHOST_HOME"]) / "polyhost.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT run_id, status FROM runs").fetchall())


def _killed_run(flow: Path, env: dict[str, str]) -> str:
    """Run ``flow`` until its first node kills the host; the id of the run left running."""
    before = _statuses(env) if (Path(env["POLYHOST_HOME"]) / "polyhost.db").exists() else {}
    done = subprocess.run(
        [str(POLYHOST), "run", str(flow), "--json"], capture_output=True, env=env, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    [(run_id, status)] = [item for item in _statuses(env).items() if item[0] not in before]
    assert status == "running"
    return run_id


def test_serve_survives_runs_it_cannot_continue_and_records_them_failed(tmp_path: Path) -> None:
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path / "home")}
    for folder in ("flows", "gone"):
        # The same nodes under other names in `gone`: the server must not find them elsewhere.
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{folder}_nodes.py").write_text(_NODES)
        manifest = _MANIFEST.replace("acme", folder)
        (tmp_path / folder / "polyhost.toml").write_text(manifest)

    def flow(path: str, flag: str, then: str) -> Path:
        file = tmp_path / path
        kind = path.split("/", maxsplit=1)[0]
        file.write_text(
            "version: 1\nnodes:\n"
            f"  - {{id: first, type: {kind}.die_once, with: {{flag: '{tmp_path / flag}'}}}}\n"
            f"  - {then}\n"
            "edges: [{from: first, to: last}]\n"
        )
        return file

    # Its last node returns text that is not UTF-8: the run goes on, and fails there.
    bad = _killed_run(flow("flows/bad.yaml", "bad.flag", "{id: last, type: flows.surrogate}"), env)
    # Its node types are gone with their manifest: it cannot go on at all.
    gone = _killed_run(
        flow("gone/flow.yaml", "gone.flag", "{id: last, type: core.transform, with: {value: 1}}"),
        env,
    )
    (tmp_path / "gone" / "polyhost.toml").unlink()
    good = _killed_run(
        flow("flows/good.yaml", "good.flag", "{id: last, type: core.transform, with: {value: 2}}"),
        env,
    )

    server = subprocess.Popen(
        [str(POLYHOST), "serve", "--poll", "0.2", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = _statuses(env)
            if all(statuses[run_id] != "running" for run_id in (bad, gone, good)):
                break
            time.sleep(0.05)
        assert server.poll() is None, "serve exited"
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr

    def shown(run_id: str) -> dict[str, object]:
        out = subprocess.run(
            [str(POLYHOST), "runs", "show", run_id, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        result: dict[str, object] = json.loads(out.stdout)
        return result

    bad_result = shown(bad)
    assert bad_result["status"] == "failed"
    assert bad_result["error"] == {
        "node": "last",
        "code": "invalid_output",
        "message": "the output is not JSON: a string with a lone surrogate (U+D83D) at output.text",
    }
    gone_result = shown(gone)
    assert gone_result["status"] == "failed"
    assert "gone.die_once" in str(gone_result["error"])
    assert shown(good)["status"] == "completed"
    assert f"failed     run {bad}" in stdout
    assert f"failed     run {gone}" in stdout
    assert f"completed  run {good}" in stdout
