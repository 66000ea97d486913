"""Sidecars that misbehave, crash, hang or never start: each costs one node attempt at most."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from polyhost import Host, RunStatus
from polyhost.runtimes.grpc import _sidecar_process
from tests.grpc.conftest import (
    ROGUE,
    ROOT,
    SidecarProject,
    grpc_runtime,
    kill_host_and_check_sidecars_exit,
)
from tests.helpers.processes import is_running

pytestmark = pytest.mark.anyio


async def test_outputs_and_context_reach_the_workflow(project: SidecarProject, host: Host) -> None:
    project.rogue()
    result = await host.run(
        project.workflow([{"id": "a", "type": "rogue.echo", "with": {"x": [1, "é"]}}])
    )
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["a"].output == {
        "params": {"x": [1, "é"]},
        "context": {"node_id": "a", "attempt": 1},
    }


@pytest.mark.parametrize(
    ("node_type", "code"),
    [
        ("rogue.garbage", "sidecar_invalid_output"),
        ("rogue.list", "sidecar_invalid_output"),
        ("rogue.silent", "sidecar_protocol"),
    ],
)
async def test_garbage_from_a_sidecar_is_a_typed_node_error(
    project: SidecarProject, host: Host, node_type: str, code: str
) -> None:
    project.rogue()
    result = await host.run(project.workflow([{"id": "n", "type": node_type}]))
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert (result.error["node"], result.error["code"]) == ("n", code)
    assert "rogue" in result.error["message"]


async def test_an_oversized_response_is_refused_by_name(
    project: SidecarProject, host: Host
) -> None:
    project.rogue(max_message_bytes=64 * 1024)
    result = await host.run(
        project.workflow([{"id": "n", "type": "rogue.big", "with": {"bytes": 200_000}}])
    )
    assert result.error is not None
    assert result.error["code"] == "sidecar_message_too_large"
    assert "max_message_bytes" in result.error["message"]
    ok = await host.run(
        project.workflow([{"id": "n", "type": "rogue.big", "with": {"bytes": 1000}}])
    )
    assert ok.status is RunStatus.COMPLETED  # the sidecar and its channel are fine


async def test_a_sidecar_hung_past_the_deadline_times_the_node_out(
    project: SidecarProject, host: Host
) -> None:
    project.rogue()
    begin = time.monotonic()
    result = await host.run(
        project.workflow(
            [{"id": "n", "type": "rogue.sleep", "with": {"ms": 20_000}, "timeout": "300ms"}]
        )
    )
    assert result.error is not None
    assert result.error["code"] == "timeout"
    assert result.nodes["n"].error is not None and result.nodes["n"].error["field"] == "timeout"
    assert time.monotonic() - begin < 5


async def test_a_sidecar_killed_mid_call_costs_one_attempt_and_is_restarted(
    project: SidecarProject, host: Host
) -> None:
    project.rogue()
    first = await host.run(project.workflow([{"id": "p", "type": "rogue.pid"}]))
    pid = first.nodes["p"].output["pid"]
    flow = project.workflow(
        [
            {
                "id": "n",
                "type": "rogue.sleep",
                "with": {"ms": 1500},
                "retry": {"attempts": 3, "backoff": "fixed", "delay": "100ms"},
            }
        ]
    )
    async with anyio.create_task_group() as tasks:
        results = []

        async def run() -> None:
            results.append(await host.run(flow))

        tasks.start_soon(run)
        await anyio.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
    [result] = results
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["n"].attempts == 2
    again = await host.run(project.workflow([{"id": "p", "type": "rogue.pid"}]))
    assert again.nodes["p"].output["pid"] != pid
    sidecar = grpc_runtime(host).sidecars.known("rogue")
    assert sidecar is not None and sidecar.restarts == 1


async def test_a_sidecar_slow_to_start_is_waited_for(project: SidecarProject, host: Host) -> None:
    command = ["sh", "-c", 'sleep 1.5; exec "$0" "$@"', *ROGUE]
    project.sidecar("rogue", command=command, env={"PYTHONPATH": str(ROOT)})
    result = await host.run(project.workflow([{"id": "a", "type": "rogue.echo"}]))
    assert result.status is RunStatus.COMPLETED, result.error


async def test_a_sidecar_that_exits_at_once_fails_its_nodes_with_its_stderr(
    project: SidecarProject, host: Host
) -> None:
    project.sidecar(
        "broken", command=["sh", "-c", "echo missing config file >&2; exit 3"], discover=False
    )
    project.node_type("broken.thing", "broken")
    result = await host.run(project.workflow([{"id": "n", "type": "broken.thing"}]))
    assert result.error is not None
    assert (result.error["node"], result.error["code"]) == ("n", "sidecar_unavailable")
    assert "status 3" in result.error["message"]
    assert "missing config file" in result.error["message"]


async def test_discovery_failure_is_named_when_one_of_its_types_is_used(
    project: SidecarProject, tmp_path: Path
) -> None:
    project.sidecar("broken", command=["sh", "-c", "exit 4"])
    flow = project.workflow([{"id": "n", "type": "broken.thing"}])
    from polyhost import CompileError, HostConfig

    async with Host(HostConfig(home=tmp_path / "h2"), store=None) as host:
        with pytest.raises(CompileError) as caught:
            await host.run(flow)
    message = str(caught.value.diagnostics[0].message)
    assert "unknown node type 'broken.thing'" in message
    assert "sidecar broken could not list its node types" in message
    assert "status 4" in message


async def test_a_sidecar_of_another_major_version_is_refused(
    project: SidecarProject, host: Host
) -> None:
    project.rogue(env={"ROGUE_PROTOCOL": "2.0"}, discover=False)
    project.node_type("rogue.echo", "rogue")
    result = await host.run(project.workflow([{"id": "n", "type": "rogue.echo"}]))
    assert result.error is not None
    assert result.error["code"] == "sidecar_protocol"
    assert "2.0" in result.error["message"] and "1.1" in result.error["message"]


async def test_a_taken_port_costs_a_restart_on_another(
    project: SidecarProject, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real = _sidecar_process.free_port
    monkeypatch.setattr(_sidecar_process, "free_port", lambda: next(ports, None) or real())
    project.rogue(transport="tcp", discover=False)
    project.node_type("rogue.echo", "rogue")
    flow = project.workflow(
        [
            {
                "id": "n",
                "type": "rogue.echo",
                "retry": {"attempts": 3, "backoff": "fixed", "delay": "200ms"},
            }
        ]
    )
    try:
        result = await host.run(flow)
    finally:
        taken.close()
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["n"].attempts == 2


async def test_sidecars_stop_with_the_host(project: SidecarProject, tmp_path: Path) -> None:
    project.rogue()
    from polyhost import HostConfig

    async with Host(HostConfig(home=tmp_path / "h3"), store=None) as host:
        result = await host.run(project.workflow([{"id": "p", "type": "rogue.pid"}]))
        pid = result.nodes["p"].output["pid"]
        assert is_running(pid)
    assert not is_running(pid)


def test_sidecars_exit_when_the_host_is_killed(project: SidecarProject, tmp_path: Path) -> None:
    project.rogue()
    flow = project.workflow([{"id": "p", "type": "rogue.pid"}])
    kill_host_and_check_sidecars_exit(flow, ["p"], tmp_path / "h4")


@pytest.mark.parametrize(("sent", "works"), [("s3cret", True), ("wrong", False)])
async def test_a_remote_sidecar_is_reached_with_the_token_from_the_environment(
    project: SidecarProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: str, works: bool
) -> None:
    port = _sidecar_process.free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POLYHOST_LISTEN": f"127.0.0.1:{port}"}
    env["POLYHOST_SIDECAR_TOKEN"] = "s3cret"
    with subprocess.Popen(ROGUE, env=env, stdout=subprocess.PIPE) as remote:
        try:
            assert remote.stdout is not None
            assert remote.stdout.readline().startswith(b"POLYHOST_SIDECAR_READY")
            monkeypatch.setenv("ROGUE_TOKEN", sent)
            project.sidecar(
                "rogue", endpoint=f"127.0.0.1:{port}", token_env="ROGUE_TOKEN", discover=False
            )
            project.node_type("rogue.echo", "rogue")
            from polyhost import HostConfig

            async with Host(HostConfig(home=tmp_path / "h5"), store=None) as host:
                result = await host.run(project.workflow([{"id": "n", "type": "rogue.echo"}]))
        finally:
            remote.kill()
    if works:
        assert result.status is RunStatus.COMPLETED, result.error
    else:
        assert result.error is not None
        assert (
            result.error["code"] == "sidecar_protocol"
            or result.error["code"] == "sidecar_unauthenticated"
        )
        assert "token" in result.error["message"] or "UNAUTHENTICATED" in result.error["message"]


async def test_a_sidecar_that_stops_serving_is_killed_and_restarted(
    project: SidecarProject, host: Host
) -> None:
    project.rogue(env={"ROGUE_SICK_AFTER": "0.5"}, health_interval=0.2)
    first = await host.run(project.workflow([{"id": "p", "type": "rogue.pid"}]))
    pid = first.nodes["p"].output["pid"]
    sidecar = grpc_runtime(host).sidecars.known("rogue")
    assert sidecar is not None
    with anyio.fail_after(10):
        while sidecar.restarts == 0:
            await anyio.sleep(0.05)
    assert "failed 3 health checks in a row" in sidecar.describe_failure()
    assert not is_running(pid)
    again = await host.run(project.workflow([{"id": "p", "type": "rogue.pid"}]))
    assert again.status is RunStatus.COMPLETED, again.error
    assert again.nodes["p"].output["pid"] != pid


async def test_a_sidecar_gets_none_of_the_hosts_environment_unless_named(
    project: SidecarProject, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_SECRET", "hunter2")
    monkeypatch.setenv("SHARED_SETTING", "on")
    project.rogue(env={"GIVEN": "yes"}, env_inherit=["SHARED_SETTING"])
    result = await host.run(project.workflow([{"id": "e", "type": "rogue.env"}]))
    env = result.nodes["e"].output["env"]
    assert "HOST_SECRET" not in env
    assert (env["SHARED_SETTING"], env["GIVEN"]) == ("on", "yes")
    assert env["PATH"] == os.environ["PATH"]
    assert env["POLYHOST_PARENT_WATCH"] == "stdin"


async def test_a_type_declared_in_the_manifest_stands_beside_the_sidecars_own(
    project: SidecarProject, host: Host
) -> None:
    project.rogue()
    project.types.append(
        {"type": "rogue.echo", "runtime": "grpc", "sidecar": "rogue", "description": "declared"}
    )
    project.sidecar("rogue", **project.sidecars["rogue"])  # rewrite the manifest with the type
    result = await host.run(project.workflow([{"id": "a", "type": "rogue.echo"}]))
    assert result.status is RunStatus.COMPLETED, result.error
    declared, offered = host.catalog.get("rogue.echo"), host.catalog.get("rogue.garbage")
    assert declared is not None and declared.description == "declared"
    assert offered is not None and offered.runtime == "grpc"  # the rest come from Describe
