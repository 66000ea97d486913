"""The processes a sidecar starts end with it; its output and its error codes stay bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from polyhost import Host, HostConfig, RunStatus
from tests.grpc.conftest import ROOT, SidecarProject
from tests.helpers.processes import is_running, wait_gone

pytestmark = pytest.mark.anyio


def host_script(home: Path, body: str) -> str:
    """A host process running ``body`` (which may await ``host.run``) inside ``Host``."""
    indented = "\n".join("        " + line for line in body.strip().splitlines())
    return (
        "import anyio, json, resource, sys\n"
        "from polyhost import Host, HostConfig\n"
        "async def main():\n"
        f"    async with Host(HostConfig(home={str(home)!r}), store=None) as host:\n"
        f"{indented}\n"
        "anyio.run(main)\n"
    )


async def test_every_process_of_a_sidecar_ends_when_the_host_closes(
    project: SidecarProject, tmp_path: Path
) -> None:
    project.rogue()
    async with Host(HostConfig(home=tmp_path / "home"), store=None) as host:
        result = await host.run(project.workflow([{"id": "s", "type": "rogue.spawn"}]))
        assert result.status is RunStatus.COMPLETED, result.error
        pids = list(result.nodes["s"].output.values())
        assert all(is_running(pid) for pid in pids)
    assert wait_gone(pids, 5) == [], "a process of the sidecar outlived the host"


def test_every_process_of_a_sidecar_ends_when_the_host_is_killed(
    project: SidecarProject, tmp_path: Path
) -> None:
    project.rogue()
    flow = project.workflow([{"id": "s", "type": "rogue.spawn"}])
    body = f"""
result = await host.run({str(flow)!r})
print(json.dumps(result.nodes["s"].output), flush=True)
await anyio.sleep(60)
"""
    script = host_script(tmp_path / "home", body)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT) as host:
        try:
            assert host.stdout is not None
            pids = list(json.loads(host.stdout.readline()).values())
            assert len(pids) == 3 and all(is_running(pid) for pid in pids)
            host.kill()
            host.wait()
            assert wait_gone(pids, 5) == [], "a process of the sidecar outlived its killed host"
        finally:
            host.kill()


def test_a_flood_on_stderr_without_a_newline_keeps_the_host_small(
    project: SidecarProject, tmp_path: Path
) -> None:
    project.rogue()
    flood = 150 * 1024 * 1024
    flow = project.workflow([{"id": "f", "type": "rogue.flood", "with": {"bytes": flood}}])
    body = f"""
import logging
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append(record.getMessage())
logger = logging.getLogger("polyhost.sidecar.rogue")
logger.addHandler(handler)
logger.setLevel(logging.DEBUG)
await host.run({str(flow)!r})  # starts the sidecar; measured from here
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = await host.run({str(flow)!r})
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cut = [line for line in lines if "[cut: longer than" in line]
print(json.dumps({{"status": result.status.value, "grew_kib": after - before,
                  "longest": max(map(len, lines)), "cut": len(cut)}}))
"""
    begin = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", host_script(tmp_path / "home", body)],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == "completed"
    assert report["grew_kib"] < 40 * 1024, report  # was over 600 MB for 200 MB of stderr
    assert report["longest"] < 20 * 1024 and report["cut"] >= 1, report
    assert time.monotonic() - begin < 30


def test_a_missing_binary_is_reported_as_such_and_grpc_prints_nothing(
    project: SidecarProject, tmp_path: Path
) -> None:
    # Another sidecar runs (gRPC threads in the host) while the missing one is started again and
    # again: a fork in such a host used to crash before exec (reported as SIGSEGV) and let
    # gRPC's fork handlers print to stderr.
    project.rogue()
    project.sidecar("missing", command=["./no-such-binary"], discover=False)
    project.node_type("missing.thing", "missing")
    flow = project.workflow(
        [
            {"id": "a", "type": "rogue.sleep", "with": {"ms": 50}},
            {
                "id": "b",
                "type": "missing.thing",
                "retry": {"attempts": 3, "backoff": "fixed", "delay": "10ms"},
            },
        ]
    )
    body = f"""
for _ in range(2):
    result = await host.run({str(flow)!r})
    print(result.nodes["b"].error["message"], flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", host_script(tmp_path / "home", body)],
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    messages = done.stdout.decode().splitlines()
    assert len(messages) == 2
    for message in messages:
        assert "could not be started: No such file or directory" in message, message
        assert "SIG" not in message
    assert b"fork_posix" not in done.stderr and b"Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("code", ["E_FIRE", "quota.exceeded", "débit refusé", "x" * 128])
async def test_a_sidecars_printable_code_stands(
    project: SidecarProject, host: Host, code: str
) -> None:
    project.rogue()
    params = {"code": code, "field": "with.account", "message": "no"}
    result = await host.run(project.workflow([{"id": "n", "type": "rogue.fail", "with": params}]))
    error = result.nodes["n"].error
    assert error is not None
    assert (error["code"], error["field"], error["message"]) == (code, "with.account", "no")


@pytest.mark.parametrize(
    ("code", "field", "shown"),
    [
        ("", "", None),  # no code given: the runtime's own
        ("x" * 10_000, "", "(10000 characters)"),
        ("bad\x1b[31mcode", "", "'bad\\x1b[31mcode'"),
        ("E_FIRE\u202e", "", "'E_FIRE\\u202e'"),
        ("E_FIRE", "f\x00" * 5_000, "the error field 'f\\x00f\\x00"),
    ],
)
async def test_a_sidecars_code_or_field_that_breaks_the_rule_is_replaced(
    project: SidecarProject, host: Host, code: str, field: str, shown: str | None
) -> None:
    project.rogue()
    params = {"code": code, "field": field, "message": "refused"}
    result = await host.run(project.workflow([{"id": "n", "type": "rogue.fail", "with": params}]))
    error = result.nodes["n"].error
    assert error is not None
    assert error["field"] is None
    assert error["code"] == ("E_FIRE" if code == "E_FIRE" else "sidecar_error")
    assert error["message"].startswith("refused")
    assert len(error["message"]) < 500
    if shown is not None:
        assert shown in error["message"]
