"""The ``polyhost`` command with ``--server``: the same output and exit statuses as a local run,
the history commands against a server, and ``polyhost deploy``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from polyhost.client import Client
from tests.helpers.cli import POLYHOST
from tests.helpers.server import ServerProcess

GREET = """\
version: 1
inputs:
  type: object
  properties:
    name: {type: string}
  required: [name]
nodes:
  - id: hello
    type: core.transform
    with: {value: "hello {{ input.name }}"}
  - id: shout
    type: core.log
    with: {message: "{{ hello.value }}!"}
edges:
  - {from: hello, to: shout}
outputs:
  greeting: "{{ shout.message }}"
"""
FAILING = """\
version: 1
id: failing
nodes:
  - id: start
    type: core.transform
    with: {value: 1}
  - id: boom
    type: core.fail
    with: {message: "it broke", code: broken}
edges:
  - {from: start, to: boom}
"""
INVALID = """\
version: 1
nodes:
  - id: first
    type: core.transform
    with: {value: "{{ nowhere.value }}"}
"""
APPROVAL = """\
version: 1
id: approve
nodes:
  - id: ask
    type: core.approval
    with:
      prompt: ok?
      schema: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
outputs:
  answer: "{{ ask.ok }}"
"""
SLOW = """\
version: 1
id: slow
nodes:
  - id: nap
    type: core.wait
    with: {duration: 30s}
"""


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs `polyhost` in a directory of its own, with its own POLYHOST_HOME (the local
    store), and optionally $POLYHOST_SERVER and $POLYHOST_API_TOKEN."""

    def __init__(self, cwd: Path, **env: str) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("POLYHOST_")}
        self.env |= {"POLYHOST_HOME": str(cwd / "local-home"), "NO_COLOR": "1", **env}
        self.env.pop("COLUMNS", None)

    def write(self, name: str, text: str) -> Path:
        path = self.cwd / name
        path.write_text(text, encoding="utf-8")
        return path

    def __call__(self, *args: str) -> Outcome:
        done = subprocess.run(
            [str(POLYHOST), *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def without_ids(value: Any) -> Any:
    """A result object without what differs between two runs of one workflow."""
    if isinstance(value, dict):
        return {
            key: without_ids(item)
            for key, item in value.items()
            if key not in {"execution_id", "duration_ms"}
        }
    if isinstance(value, list):
        return [without_ids(item) for item in value]
    return value


_VOLATILE = [
    (re.compile(r"\+\s*\d+\.\d+s"), "+T"),  # time since the run started
    (re.compile(r"\b\d+(\.\d+)? ms\b|\b\d+\.\d+ s\b"), "D"),  # durations
    (re.compile(r"run [0-9a-f][0-9a-f-]{7,}"), "run ID"),
]


def normalized(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def run_id_in(text: str) -> str:
    found = re.search(r"run ([0-9a-f][0-9a-f-]{7,})", text)
    assert found, text
    return found.group(1)


# polyhost run --server -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "args", "code"),
    [
        ("greet.yaml", GREET, ["--input", "name=world"], 0),
        ("failing.yaml", FAILING, [], 1),
        ("invalid.yaml", INVALID, [], 2),
        ("greet.yaml", GREET, ["--input", "name=world", "--input", "nmae=typo"], 2),
        ("greet.yaml", GREET, ["--input", "name=42"], 2),
        ("greet.yaml", GREET, [], 2),
    ],
    ids=["completed", "failed", "invalid-workflow", "unknown-input", "wrong-type", "missing"],
)
def test_run_on_a_server_prints_what_a_local_run_prints(
    server: ServerProcess, cli: Cli, name: str, text: str, args: list[str], code: int
) -> None:
    file = cli.write(name, text)
    local = cli("run", str(file), *args, "--json")
    remote = cli("run", str(file), *args, "--json", "--server", server.url)
    assert (local.code, remote.code) == (code, code), remote.stderr
    assert without_ids(remote.json()) == without_ids(local.json())
    if code != 2:
        with Client(server.url) as client:
            stored = client.run_result(remote.json()["execution_id"])
        assert stored.to_dict() == remote.json()

    local_text = cli("run", str(file), *args)
    remote_text = cli("run", str(file), *args, "--server", server.url)
    assert remote_text.code == local_text.code == code
    assert normalized(remote_text.stdout) == normalized(local_text.stdout)
    assert normalized(remote_text.stderr) == normalized(local_text.stderr)


def test_the_server_comes_from_the_environment(server: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(tmp_path, POLYHOST_SERVER=server.url)
    file = cli.write("greet.yaml", GREET)
    done = cli("run", str(file), "--input", "name=env", "--json")
    assert done.code == 0, done.stderr
    assert done.json()["outputs"] == {"greeting": "hello env!"}
    # It ran on the server: the local store never saw it.
    assert json.loads(Cli(tmp_path)("runs", "list", "--json").stdout or "[]") == []
    with Client(server.url) as client:
        assert client.runs().runs[0].execution_id == done.json()["execution_id"]


def test_a_paused_run_says_how_to_resume_it_on_the_server(server: ServerProcess, cli: Cli) -> None:
    file = cli.write("approve.yaml", APPROVAL)
    paused = cli("run", str(file), "--server", server.url)
    assert paused.code == 0, paused.stderr
    run_id = run_id_in(paused.stdout)
    assert f"polyhost runs resume {run_id} --server {server.url} --input ok=VALUE" in paused.stdout

    shown = cli("runs", "show", run_id[:10], "--server", server.url)
    assert shown.code == 0 and "waiting for" in shown.stdout and "ok?" in shown.stdout

    resumed = cli("runs", "resume", run_id, "--input", "ok=true", "--json", "--server", server.url)
    assert resumed.code == 0, resumed.stderr
    assert resumed.json()["status"] == "completed"
    assert resumed.json()["outputs"] == {"answer": True}

    again = cli("runs", "resume", run_id, "--input", "ok=true", "--server", server.url)
    assert again.code == 1
    assert "[invalid_run_state]" in again.stderr


def test_runs_list_show_and_events_read_the_server(server: ServerProcess, cli: Cli) -> None:
    file = cli.write("greet.yaml", GREET)
    run_id = cli("run", str(file), "-i", "name=a", "--json", "--server", server.url).json()[
        "execution_id"
    ]

    listed = cli("runs", "list", "--json", "--server", server.url)
    assert listed.code == 0
    assert [run["execution_id"] for run in listed.json()] == [run_id]
    assert listed.json()[0]["trigger"] == "api"
    table = cli("runs", "list", "--server", server.url)
    assert run_id in table.stdout and "completed" in table.stdout
    filtered = cli("runs", "list", "--status", "failed", "--server", server.url)
    assert filtered.code == 0 and "no matching runs" in filtered.stdout

    shown = cli("runs", "show", run_id, "--json", "--server", server.url)
    with Client(server.url) as client:
        assert shown.json() == client.run_result(run_id).to_dict()
    details = cli("runs", "show", run_id, "--server", server.url)
    assert "hello" in details.stdout and "shout" in details.stdout
    assert f"polyhost runs events {run_id} --server {server.url}" in details.stdout

    events = cli("runs", "events", run_id, "--json", "--server", server.url).json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "run.completed"
    lines = cli("runs", "events", run_id, "--server", server.url).stdout.splitlines()
    assert len(lines) == len(events) and "run.started" in lines[0]


def test_cancel_retry_and_rerun_on_the_server(server: ServerProcess, cli: Cli) -> None:
    paused = cli("run", str(cli.write("approve.yaml", APPROVAL)), "--json", "--server", server.url)
    run_id = paused.json()["execution_id"]
    cancelled = cli("runs", "cancel", run_id, "--server", server.url)
    assert cancelled.code == 0 and "cancelled" in cancelled.stdout
    assert cli("runs", "cancel", run_id, "--json", "--server", server.url).code == 1

    failed = cli("run", str(cli.write("failing.yaml", FAILING)), "--json", "--server", server.url)
    retried = cli("runs", "retry", failed.json()["execution_id"], "--json", "--server", server.url)
    assert retried.code == 1  # it fails again, as it would locally
    assert retried.json()["execution_id"] == failed.json()["execution_id"]
    assert retried.json()["error"]["code"] == "broken"

    done = cli("run", str(cli.write("greet.yaml", GREET)), "-i", "name=x", "--server", server.url)
    first = run_id_in(done.stdout)
    rerun = cli("runs", "rerun", first, "--json", "--server", server.url)
    assert rerun.code == 0, rerun.stderr
    assert rerun.json()["execution_id"] != first
    assert rerun.json()["outputs"] == {"greeting": "hello x!"}


def test_unknown_runs_and_unreachable_servers_exit_1(server: ServerProcess, cli: Cli) -> None:
    missing = cli("runs", "show", "no-such-run", "--server", server.url)
    assert missing.code == 1
    assert "[run_not_found]" in missing.stderr and "Traceback" not in missing.stderr

    gone = "http://127.0.0.1:9"
    file = cli.write("greet.yaml", GREET)
    down = cli("run", str(file), "-i", "name=x", "--json", "--server", gone)
    assert down.code == 1
    assert down.json()["status"] == "failed"
    assert down.json()["error"]["code"] == "connection_failed"
    assert "cannot reach the polyhost server at http://127.0.0.1:9" in down.stderr


def test_local_options_are_refused_with_a_server(server: ServerProcess, cli: Cli) -> None:
    file = cli.write("greet.yaml", GREET)
    for extra in (["--db", "x.db"], ["--env", "HOME"], ["--nodes", "polyhost.toml"]):
        done = cli("run", str(file), *extra, "--server", server.url)
        assert done.code == 2
        assert "cannot be used with --server" in done.stderr
    assert cli("runs", "list", "--db", "x.db", "--server", server.url).code == 2


def test_the_token_comes_from_the_environment(
    secured_server: ServerProcess, tmp_path: Path
) -> None:
    token = secured_server.token
    assert token
    file = Cli(tmp_path).write("greet.yaml", GREET)
    refused = Cli(tmp_path)("run", str(file), "-i", "name=x", "--server", secured_server.url)
    assert refused.code == 1 and "[unauthorized]" in refused.stderr
    assert token not in refused.stdout + refused.stderr

    cli = Cli(tmp_path, POLYHOST_API_TOKEN=token)
    done = cli("run", str(file), "-i", "name=x", "--json", "--server", secured_server.url)
    assert done.code == 0, done.stderr
    assert token not in done.stdout + done.stderr


def test_ctrl_c_cancels_the_run_on_the_server(server: ServerProcess, cli: Cli) -> None:
    file = cli.write("slow.yaml", SLOW)
    with subprocess.Popen(
        [str(POLYHOST), "run", str(file), "--server", server.url],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            # The node's line comes from the server's stream: the command is following it.
            lines = [proc.stdout.readline() for _ in range(2)]
            assert "nap running" in lines[1], lines
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "cancelled" in stdout
    with Client(server.url) as client:
        assert client.runs().runs[0].status == "cancelled"


# polyhost deploy -----------------------------------------------------------------------------


def test_deploy_prints_id_version_hash_and_whether_it_is_new(
    server: ServerProcess, cli: Cli
) -> None:
    file = cli.write("greet.yaml", GREET)
    first = cli("deploy", str(file), "--json", "--server", server.url)
    assert first.code == 0, first.stderr
    deployed = first.json()
    assert (deployed["id"], deployed["version"], deployed["created"]) == ("greet", 1, True)

    same = cli("deploy", str(file), "--server", server.url)
    assert same.code == 0
    assert re.search(r"version\s+1\b", same.stdout)
    assert deployed["hash"] in same.stdout
    assert "no (the document is unchanged)" in same.stdout

    named = cli("deploy", str(file), "--id", "welcome", "--json", "--server", server.url)
    assert named.json()["id"] == "welcome"
    with Client(server.url) as client:
        assert {w.id for w in client.workflows()} == {"greet", "welcome"}

    invalid = cli("deploy", str(cli.write("invalid.yaml", INVALID)), "--server", server.url)
    assert invalid.code == 2
    assert "node 'first'" in invalid.stderr and "with.value" in invalid.stderr

    assert cli("deploy", str(file)).code == 2  # no server: a usage error
