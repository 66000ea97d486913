"""``polyhost runs resume / retry / cancel``: runs that pause or fail and go on elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Polyhost, polyhost_command

_APPROVAL = """\
version: 1
id: approve_flow
nodes:
  - id: approve
    type: core.approval
    with:
      prompt: "ok?"
      schema:
        type: object
        properties: {approved: {type: boolean}}
        required: [approved]
  - id: say
    type: core.log
    with: {message: "approved: {{ approve.approved }}"}
edges:
  - {from: approve, to: say}
"""

_NODES = """\
from pathlib import Path


def count(params):
    path = Path(params["counter"])
    runs = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(runs))
    return {"runs": runs}


def flaky(params):
    flag = Path(params["flag"])
    if not flag.exists():
        flag.write_text("failed once")
        raise RuntimeError("the first attempt fails")
    return {"ok": True}
"""

_MANIFEST = """\
[[nodes]]
type = "acme.count"
runtime = "python"
handler = "acme_nodes:count"

[[nodes]]
type = "acme.flaky"
runtime = "python"
handler = "acme_nodes:flaky"
"""


@pytest.fixture
def approval(write: Callable[[str, str], Path]) -> Path:
    """``approve`` (core.approval, wants ``approved: boolean``) then ``say`` (core.log)."""
    return write("approve.yaml", _APPROVAL)


def _paused_run(polyhost: Polyhost, flow: Path) -> dict[str, Any]:
    done = polyhost("run", str(flow), "--json")
    assert done.code == 0, done.stderr
    result: dict[str, Any] = done.json()
    assert result["status"] == "paused"
    return result


def _show(polyhost: Polyhost, run_id: str) -> dict[str, Any]:
    done = polyhost("runs", "show", run_id, "--json")
    assert done.code == 0, done.stderr
    shown: dict[str, Any] = done.json()
    return shown


def test_a_paused_run_exits_0_and_says_how_to_resume(polyhost: Polyhost, approval: Path) -> None:
    result = _paused_run(polyhost, approval)
    assert result["nodes"]["approve"]["status"] == "paused"
    [waiting] = result["pause"]["waiting"]
    assert waiting["node"] == "approve"
    assert waiting["kind"] == "approval"
    assert waiting["prompt"] == "ok?"

    done = polyhost("run", str(approval))
    assert done.code == 0, done.stderr
    assert "paused" in done.stdout
    assert "ok?" in done.stdout
    assert "polyhost runs resume" in done.stdout
    assert "--input approved=VALUE" in done.stdout


def test_runs_show_of_a_paused_run_says_what_it_waits_for(
    polyhost: Polyhost, approval: Path
) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]
    assert _show(polyhost, run_id)["pause"]["waiting"][0]["prompt"] == "ok?"

    done = polyhost("runs", "show", run_id)
    assert done.code == 0, done.stderr
    assert "waiting for" in done.stdout
    assert "node 'approve' (approval): ok?" in done.stdout
    assert '"approved"' in done.stdout  # the schema of the resume input
    assert f"polyhost runs resume {run_id} --input approved=VALUE" in done.stdout


def test_resume_in_another_process_completes_the_run(polyhost: Polyhost, approval: Path) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]

    done = polyhost("runs", "resume", run_id, "--input", "approved=true", "--json")
    assert done.code == 0, done.stderr
    result = done.json()
    assert result["execution_id"] == run_id
    assert result["status"] == "completed"
    assert result["nodes"]["approve"]["status"] == "completed"
    assert result["nodes"]["say"]["output"] == {"message": "approved: true"}
    assert _show(polyhost, run_id)["status"] == "completed"

    again = polyhost("runs", "resume", run_id, "--input", "approved=true")
    assert again.code == 1
    assert "already completed" in again.stderr


def test_resume_prints_the_summary_without_json(polyhost: Polyhost, approval: Path) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]
    done = polyhost("runs", "resume", run_id[:14], "--input", "approved=false")
    assert done.code == 0, done.stderr
    assert "completed" in done.stdout
    assert "approved: false" in done.stdout


def test_resume_with_an_input_the_schema_refuses_exits_2(
    polyhost: Polyhost, approval: Path
) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]
    done = polyhost("runs", "resume", run_id, "--input", 'approved="yes"')
    assert done.code == 2, done.stderr
    assert "approved" in done.stderr
    assert _show(polyhost, run_id)["status"] == "paused"

    as_json = polyhost("runs", "resume", run_id, "--input", 'approved="yes"', "--json")
    assert as_json.code == 2
    assert as_json.json()["status"] == "invalid"


def test_resume_of_an_unknown_run_exits_1(polyhost: Polyhost) -> None:
    done = polyhost("runs", "resume", "nope", "--input", "approved=true")
    assert done.code == 1
    assert "no run with id 'nope'" in done.stderr


def test_cancel_of_a_paused_run(polyhost: Polyhost, approval: Path) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]

    done = polyhost("runs", "cancel", run_id)
    assert done.code == 0, done.stderr
    assert "cancelled" in done.stdout
    shown = _show(polyhost, run_id)
    assert shown["status"] == "cancelled"
    assert shown["error"]["code"] == "cancelled"

    again = polyhost("runs", "cancel", run_id, "--json")
    assert again.code == 1
    assert "already cancelled" in again.stderr
    resumed = polyhost("runs", "resume", run_id, "--input", "approved=true")
    assert resumed.code == 1
    assert "already cancelled" in resumed.stderr


def test_cancel_json(polyhost: Polyhost, approval: Path) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]
    done = polyhost("runs", "cancel", run_id[:14], "--json")
    assert done.code == 0, done.stderr
    assert done.json() == {"execution_id": run_id, "status": "cancelled"}


def test_retry_continues_a_failed_run_without_running_completed_nodes(
    polyhost: Polyhost, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("flows/acme_nodes.py", _NODES)
    write("flows/polyhost.toml", _MANIFEST)
    counter = tmp_path / "count.txt"
    flag = tmp_path / "flag.txt"
    flow = write(
        "flows/flaky.yaml",
        f"""\
version: 1
id: flaky_flow
nodes:
  - {{id: first, type: acme.count, with: {{counter: "{counter}"}}}}
  - {{id: second, type: acme.flaky, with: {{flag: "{flag}"}}}}
edges:
  - {{from: first, to: second}}
outputs:
  runs: "{{{{ first.runs }}}}"
  ok: "{{{{ second.ok }}}}"
""",
    )
    done = polyhost("run", str(flow), "--json")
    assert done.code == 1, done.stderr
    failed = done.json()
    assert failed["status"] == "failed"
    assert failed["nodes"]["second"]["status"] == "failed"
    assert counter.read_text() == "1"

    retried = polyhost("runs", "retry", failed["execution_id"], "--json")
    assert retried.code == 0, retried.stderr
    result = retried.json()
    assert result["execution_id"] == failed["execution_id"]
    assert result["status"] == "completed"
    assert result["outputs"] == {"runs": 1, "ok": True}
    assert counter.read_text() == "1"  # `first` did not run again

    again = polyhost("runs", "retry", failed["execution_id"])
    assert again.code == 1
    assert "already completed" in again.stderr


def test_retry_of_a_paused_run_is_refused(polyhost: Polyhost, approval: Path) -> None:
    run_id = _paused_run(polyhost, approval)["execution_id"]
    done = polyhost("runs", "retry", run_id)
    assert done.code == 1
    assert "paused" in done.stderr


def test_a_long_wait_pauses_with_a_timer(
    polyhost: Polyhost, write: Callable[[str, str], Path]
) -> None:
    flow = write(
        "timer.yaml",
        "version: 1\nnodes:\n  - {id: later, type: core.wait, with: {duration: 2h}}\n",
    )
    done = polyhost("run", str(flow))
    assert done.code == 0, done.stderr
    assert "node 'later' (timer), due at" in done.stdout
    run_id = polyhost("runs", "list", "--json").json()[0]["execution_id"]
    assert f"resume with: polyhost runs resume {run_id}\n" in done.stdout  # no input needed
    [waiting] = _show(polyhost, run_id)["pause"]["waiting"]
    assert waiting["kind"] == "timer"
    assert waiting["wake_at"] > time.time() + 3600


def test_cancel_of_a_run_executing_in_another_process(
    polyhost: Polyhost, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    flow = write(
        "slow.yaml",
        "version: 1\nnodes:\n  - {id: slow, type: core.wait, with: {duration: 30s}}\n",
    )
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "POLYHOST_DEBUG"}}
    env["POLYHOST_HOME"] = str(tmp_path / "home")
    running = subprocess.Popen(
        [*polyhost_command(), "run", str(flow), "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _wait_for_running(polyhost, running)
        done = polyhost("runs", "cancel", run_id)
        assert done.code == 0, done.stderr
        assert "cancel requested" in done.stdout
        stdout, stderr = running.communicate(timeout=20)
    finally:
        running.kill()
        running.communicate()  # closes the pipes too
    assert running.returncode == 1, stderr
    assert json.loads(stdout)["status"] == "cancelled"
    assert _show(polyhost, run_id)["status"] == "cancelled"


def _wait_for_running(polyhost: Polyhost, running: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = polyhost("runs", "list", "--status", "running", "--json").json()
        if runs:
            return str(runs[0]["execution_id"])
        if running.poll() is not None:
            _, stderr = running.communicate()
            raise AssertionError(f"`polyhost run` ended ({running.returncode}): {stderr}")
        time.sleep(0.1)
    raise AssertionError("the run never showed up as running")
