"""Secrets: a value allowed with ``--env`` (or a manifest's ``[host] env``) is masked in
everything a run lets out, wherever a node puts it; and a node's own output (print, logging)
becomes its log events, so ``run --json`` prints one object."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import POLYHOST, listed_runs, wait_until_running

from .conftest import Outcome, Polyhost

SECRET = "tok-9f2c41e7-secret"
ROOT = Path(__file__).resolve().parents[2]
SIDECAR = [sys.executable, str(Path(__file__).with_name("secret_sidecar.py"))]

NODES = """
import asyncio
import logging
import os
import sys
import threading
import time
from pathlib import Path

from polyhost import NodeError

log = logging.getLogger("acme.nodes")
print("the nodes module is imported")


def leak(params, ctx):
    s = params["s"]
    print("printed", s)
    print("to stderr", s, file=sys.stderr)
    log.warning("logged %s", s)
    try:
        raise ValueError(s)
    except ValueError:
        log.exception("with a traceback")
    ctx.log(f"ctx says {s}", **{s: s, "nested": {s: [s, {"k": s}]}})
    return {"value": s, s: {"deep": [s]}, "length": len(s)}


async def aleak(params, ctx):
    s = params["s"]
    print("async printed", s)
    sys.stdout.write("half a line " + s)
    await asyncio.sleep(0)
    log.error("async logged %s", s)
    raise NodeError(f"async failed {s}", code=s, field=s)


def pleak(params, ctx):
    s = params["s"]
    print("process printed", s)
    log.warning("process logged %s", s)
    raise NodeError(f"process failed {s}", code=s, field=s)


def chatty(params, ctx):
    print("line one")
    sys.stdout.write("no newline")
    print("from stderr", file=sys.stderr)
    os.write(1, b"straight to fd 1\\n")
    worker = threading.Thread(target=print, args=("from a thread of its own",))
    worker.start()
    worker.join()
    return {"ok": True}


async def achatty(params, ctx):
    print("async line")
    return {"ok": True}


def gate(params, ctx):
    marker = Path(params["marker"])
    if not marker.exists():
        marker.write_text("first")
        time.sleep(60)  # the host is killed meanwhile
    return {"passed": True}
"""

MANIFEST = """
[[nodes]]
type = "acme.leak"
runtime = "python"
handler = "nodes:leak"

[[nodes]]
type = "acme.aleak"
runtime = "python"
handler = "nodes:aleak"

[[nodes]]
type = "acme.pleak"
runtime = "python"
handler = "nodes:pleak"
isolation = "process"

[[nodes]]
type = "acme.chatty"
runtime = "python"
handler = "nodes:chatty"

[[nodes]]
type = "acme.achatty"
runtime = "python"
handler = "nodes:achatty"

[[nodes]]
type = "acme.gate"
runtime = "python"
handler = "nodes:gate"

[sidecars.leaky]
command = {command}
env = {{PYTHONPATH = {root}}}
"""

# Every place a workflow can put the secret; `check` proves the nodes saw the real value.
EVERYWHERE = """
version: 1
id: leaky
nodes:
  - {id: sync, type: acme.leak, with: {s: "{{ env.API_TOKEN }}"}}
  - {id: check, type: core.transform,
     with: {value: "{{ sync.value == env.API_TOKEN && sync.length == 19 }}"}}
  - {id: async, type: acme.aleak, with: {s: "{{ env.API_TOKEN }}"}, on_error: continue}
  - {id: process, type: acme.pleak, with: {s: "{{ env.API_TOKEN }}"}, on_error: continue}
  - {id: logged, type: core.log, with: {message: "core.log {{ env.API_TOKEN }}"}}
  - {id: sidecar, type: leaky.fail, with: {s: "{{ env.API_TOKEN }}"}, on_error: continue}
  - {id: crash, type: leaky.crash, with: {s: "{{ env.API_TOKEN }}"}, on_error: continue}
  - {id: last, type: core.fail,
     with: {message: "the end {{ env.API_TOKEN }}", code: "{{ env.API_TOKEN }}"}}
edges:
  - {from: sync, to: check}
  - {from: check, to: last}
  - {from: async, to: last}
  - {from: process, to: last}
  - {from: logged, to: last}
  - {from: sidecar, to: crash}
  - {from: crash, to: last}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "nodes.py").write_text(NODES)
    (folder / "polyhost.toml").write_text(
        MANIFEST.format(command=json.dumps(SIDECAR), root=json.dumps(str(ROOT)))
    )
    return folder


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The polyhost fixture copies os.environ when it runs a command.
    monkeypatch.setenv("API_TOKEN", SECRET)


def stored_bytes(home: Path) -> bytes:
    """Every byte polyhost keeps under its home (the database, its WAL, caches)."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def assert_nowhere(*outcomes: Outcome, home: Path) -> None:
    for outcome in outcomes:
        assert SECRET not in outcome.stdout, outcome.stdout
        assert SECRET not in outcome.stderr, outcome.stderr
    assert SECRET.encode() not in stored_bytes(home)


def history(polyhost: Polyhost, run_id: str) -> list[Outcome]:
    """The views of one run the CLI gives: the result, the events, the plain event lines."""
    return [
        polyhost("runs", "show", run_id, "--json"),
        polyhost("runs", "events", run_id, "--json"),
        polyhost("runs", "events", run_id),
    ]


def log_lines(events: list[dict[str, Any]], node: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "log" and e["node"] == node]


@pytest.mark.usefixtures("secret_env")
def test_a_secret_planted_everywhere_appears_nowhere(
    polyhost: Polyhost, project: Path, tmp_path: Path
) -> None:
    flow = project / "flow.yaml"
    flow.write_text(EVERYWHERE)
    home = tmp_path / "home"

    done = polyhost("run", str(flow), "--env", "API_TOKEN", "--json")
    assert done.code == 1, done.stderr
    result = done.json()  # stdout is one JSON object, prints and all
    assert result["status"] == "failed"
    assert result["error"] == {"node": "last", "code": "***", "message": "the end ***"}
    nodes = result["nodes"]
    assert nodes["check"]["output"] == {"value": True}  # the nodes had the real value
    assert nodes["sync"]["output"] == {"value": "***", "***": {"deep": ["***"]}, "length": 19}
    assert nodes["logged"]["output"] == {"message": "core.log ***"}
    for node in ("async", "process", "sidecar"):
        error = nodes[node]["error"]
        assert (error["code"], error["field"]) == ("***", "***"), error
    assert nodes["crash"]["status"] == "failed"

    run_id = result["execution_id"]
    views = history(polyhost, run_id)
    assert all(view.code == 0 for view in views), [v.stderr for v in views]
    shown = views[0].json()
    assert shown["error"] == result["error"]
    assert shown["nodes"]["sync"]["output"] == nodes["sync"]["output"]

    events = views[1].json()
    assert {"level": "info", "message": "printed ***", "stream": "stdout"} in log_lines(
        events, "sync"
    )
    sync_messages = [line["message"] for line in log_lines(events, "sync")]
    assert "to stderr ***" in sync_messages
    assert "logged ***" in sync_messages
    assert any(m.startswith("with a traceback\nTraceback") for m in sync_messages)
    assert {"level": "info", "message": "ctx says ***", "***": "***"}.items() <= next(
        line for line in log_lines(events, "sync") if line["message"] == "ctx says ***"
    ).items()
    assert [line["message"] for line in log_lines(events, "async")] == [
        "async printed ***",
        "async logged ***",
        "half a line ***",
    ]
    assert [line["message"] for line in log_lines(events, "process")] == [
        "the nodes module is imported",  # in the worker process, on its first call
        "process printed ***",
        "process logged ***",
    ]
    assert "sidecar log ***" in [line["message"] for line in log_lines(events, "sidecar")]

    # The same run with the live lines of a pipe (no --json): nothing either.
    plain = polyhost("run", str(flow), "--env", "API_TOKEN")
    assert plain.code == 1
    assert "sync [info] printed ***" in plain.stdout
    assert "process [warning] process logged ***" in plain.stdout
    assert_nowhere(done, plain, *views, home=home)


def test_what_a_node_prints_never_reaches_run_json_stdout(
    polyhost: Polyhost, project: Path
) -> None:
    flow = project / "flow.yaml"
    flow.write_text(
        """
version: 1
nodes:
  - {id: sync, type: acme.chatty}
  - {id: async, type: acme.achatty}
"""
    )
    done = polyhost("run", str(flow), "--json")
    assert done.code == 0, done.stderr
    assert done.json()["status"] == "completed"  # nothing but the object on stdout
    # Below Python (a file descriptor) or outside the node's context, it goes to stderr.
    assert "straight to fd 1" in done.stderr
    assert "from a thread of its own" in done.stderr
    assert "the nodes module is imported" in done.stderr  # when compiled, before the run
    events = polyhost("runs", "events", done.json()["execution_id"], "--json").json()
    assert log_lines(events, "sync") == [
        {"level": "info", "message": "line one", "stream": "stdout"},
        {"level": "warning", "message": "from stderr", "stream": "stderr"},
        {"level": "info", "message": "no newline", "stream": "stdout"},
    ]
    assert log_lines(events, "async") == [
        {"level": "info", "message": "async line", "stream": "stdout"}
    ]
    checked = polyhost("compile", str(flow), "--json")
    assert checked.code == 0, checked.stderr
    assert checked.json()["ok"] is True


@pytest.mark.usefixtures("secret_env")
def test_the_manifest_host_table_allows_env_and_its_values_are_secrets(
    polyhost: Polyhost, project: Path, tmp_path: Path
) -> None:
    flow = project / "flow.yaml"
    flow.write_text(
        """
version: 1
nodes:
  - {id: read, type: core.transform, with: {value: "{{ env.API_TOKEN }}"}}
outputs: {token: "{{ read.value }}"}
"""
    )
    manifest = project / "polyhost.toml"
    manifest.write_text("")
    refused = polyhost("run", str(flow), "--json")  # nothing allowed: env is empty
    assert refused.code == 1
    assert refused.json()["error"]["node"] == "read"

    manifest.write_text('[host]\nenv = ["API_TOKEN"]\n')
    done = polyhost("run", str(flow), "--json")
    assert done.code == 0, done.stderr
    assert done.json()["outputs"] == {"token": "***"}
    assert_nowhere(refused, done, *history(polyhost, done.json()["execution_id"]),
                   home=tmp_path / "home")  # fmt: skip


def test_the_host_table_takes_only_env(polyhost: Polyhost, project: Path) -> None:
    manifest = project / "polyhost.toml"
    flow = project / "flow.yaml"
    flow.write_text("version: 1\nnodes:\n  - {id: a, type: core.transform}\n")
    for table in ("[host]\nlimits = {max_nodes = 5}\n", '[host]\nenv = ["NOT-A-NAME"]\n'):
        manifest.write_text(table)
        done = polyhost("run", str(flow), "--json")
        assert done.code == 2, done.stdout
        assert "host" in done.json()["error"]["message"]


def test_env_flag_takes_variable_names_only(polyhost: Polyhost, project: Path) -> None:
    flow = project / "flow.yaml"
    flow.write_text("version: 1\nnodes:\n  - {id: a, type: core.transform}\n")
    done = polyhost("run", str(flow), "--env", "NOT A NAME")
    assert done.code == 2
    assert "not an environment variable name" in done.stderr


SERVED = """
version: 1
id: served
nodes:
  - {id: gate, type: acme.gate, with: {marker: "MARKER"}}
  - {id: crash, type: leaky.crash, with: {s: "{{ env.API_TOKEN }}"}, on_error: continue}
  - {id: fail, type: acme.aleak, with: {s: "{{ env.API_TOKEN }}"}}
edges:
  - {from: gate, to: crash}
  - {from: crash, to: fail}
"""


def test_serve_lets_no_secret_out_of_a_run_it_takes_over(project: Path, tmp_path: Path) -> None:
    flow = project / "flow.yaml"
    flow.write_text(SERVED.replace("MARKER", str(tmp_path / "marker")))
    env = {**os.environ, "POLYHOST_HOME": str(tmp_path / "home"), "API_TOKEN": SECRET}
    env.pop("POLYHOST_DEBUG", None)
    victim = subprocess.Popen(
        [str(POLYHOST), "run", str(flow), "--env", "API_TOKEN", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert wait_until_running(env), "the run never showed up as running"
        wait_for((tmp_path / "marker").exists)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

    server = subprocess.Popen(
        [str(POLYHOST), "serve", "--poll", "0.2", "--port", "0", "--env", "API_TOKEN"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: listed_runs(env)[0]["status"] == "failed")
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
    run = listed_runs(env)[0]
    assert f"failed     run {run['execution_id']}" in stdout
    assert run["error"]["code"] == "***", run
    served = Outcome(server.returncode, stdout, stderr)
    assert_nowhere(served, home=tmp_path / "home")


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
