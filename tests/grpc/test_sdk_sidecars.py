"""Real Go and TypeScript sidecars (sandboxes/, built by `make build`) behind real workflows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from polyhost import CompileError, Host, HostConfig, RunStatus
from polyhost.events._events import Event, EventType
from polyhost.runtimes.grpc._sidecar_process import free_port
from tests.grpc.conftest import (
    ROOT,
    SidecarProject,
    grpc_runtime,
    kill_host_and_check_sidecars_exit,
)

pytestmark = pytest.mark.anyio

GO = [str(ROOT / "sandboxes/go/bin/testkit-sidecar")]
TS = ["node", str(ROOT / "sandboxes/node/dist/examples/testkit.js")]
LANGUAGES = [("go", GO), ("ts", TS)]


@pytest.fixture
def mixed(project: SidecarProject) -> SidecarProject:
    """Both testkits and both examples, managed by the host."""
    project.sidecar("gokit", command=GO)
    project.sidecar("tskit", command=TS)
    project.sidecar("geo", command=[str(ROOT / "sandboxes/go/bin/geo-sidecar")])
    project.sidecar("text", command=["node", str(ROOT / "sandboxes/node/dist/examples/text.js")])
    (project.root / "nodes.py").write_text(
        "async def shout(params, ctx):\n    return {'text': params['text'].upper() + '!'}\n"
    )
    with (project.root / "polyhost.toml").open("a") as manifest:
        manifest.write(
            '\n[[nodes]]\ntype = "py.shout"\nruntime = "python"\nhandler = "nodes:shout"\n'
        )
    return project


async def test_a_workflow_mixes_python_go_and_typescript_nodes(
    mixed: SidecarProject, host: Host
) -> None:
    flow = mixed.workflow(
        [
            {"id": "shout", "type": "py.shout", "with": {"text": "Paris to London"}},
            {
                "id": "far",
                "type": "geo.distance",
                "with": {
                    "from": {"lat": 48.8566, "lon": 2.3522},
                    "to": {"lat": 51.5074, "lon": -0.1278},
                },
            },
            {
                "id": "slug",
                "type": "text.slugify",
                "with": {"text": "{{ shout.text }} {{ int(far.km) }} km"},
            },
            {"id": "go", "type": "go.echo", "with": {"slug": "{{ slug.slug }}"}},
            {"id": "ts", "type": "ts.echo", "with": {"from_go": "{{ go.params.slug }}"}},
        ],
        [
            {"from": "shout", "to": "slug"},
            {"from": "far", "to": "slug"},
            {"from": "slug", "to": "go"},
            {"from": "go", "to": "ts"},
        ],
    )
    result = await host.run(flow)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["slug"].output == {"slug": "paris-to-london-343-km"}
    assert result.nodes["ts"].output["params"] == {"from_go": "paris-to-london-343-km"}
    context = result.nodes["ts"].output["context"]
    assert context["node_id"] == "ts" and context["attempt"] == 1
    assert context["run_id"] == result.execution_id


@pytest.mark.parametrize(("language", "command"), LANGUAGES)
async def test_streamed_logs_chunks_and_progress_become_events_in_order(
    project: SidecarProject, host: Host, language: str, command: list[str]
) -> None:
    project.sidecar("kit", command=command)
    events: list[Event] = []
    result = await host.run(
        project.workflow([{"id": "s", "type": f"{language}.stream", "with": {"n": 3}}]),
        on_event=events.append,
    )
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["s"].output == {"n": 3}
    logs = [
        e.data["message"] for e in events if e.type is EventType.LOG and "progress" not in e.data
    ]
    chunks = [e.data["data"] for e in events if e.type is EventType.NODE_CHUNK]
    progress = [
        e.data["progress"] for e in events if e.type is EventType.LOG and "progress" in e.data
    ]
    assert logs == ["line 1", "line 2", "line 3"]
    assert chunks == [{"i": 1}, {"i": 2}, {"i": 3}]
    assert progress == pytest.approx([1 / 3, 2 / 3, 1.0])


@pytest.mark.parametrize(("language", "command"), LANGUAGES)
async def test_a_typed_error_keeps_its_code_and_field_and_retries_when_retryable(
    project: SidecarProject, host: Host, language: str, command: list[str]
) -> None:
    project.sidecar("kit", command=command)
    fail = {
        "code": "quota_exceeded",
        "message": "over quota",
        "field": "account",
        "retryable": True,
    }
    result = await host.run(
        project.workflow(
            [
                {
                    "id": "f",
                    "type": f"{language}.fail",
                    "with": fail,
                    "retry": {"attempts": 2, "delay": "10ms"},
                }
            ]
        )
    )
    assert result.error is not None
    assert (result.error["code"], result.error["message"]) == ("quota_exceeded", "over quota")
    assert result.nodes["f"].attempts == 2
    assert result.nodes["f"].error is not None and result.nodes["f"].error["field"] == "account"


@pytest.mark.parametrize(("language", "command"), LANGUAGES)
async def test_a_sidecar_crashing_mid_call_fails_one_node_and_is_back_for_the_next(
    project: SidecarProject, host: Host, language: str, command: list[str]
) -> None:
    project.sidecar("kit", command=command)
    first = await host.run(project.workflow([{"id": "p", "type": f"{language}.pid"}]))
    pid = first.nodes["p"].output["pid"]
    flow = project.workflow(
        [
            {"id": "crash", "type": f"{language}.crash", "with": {"after_ms": 100}},
            {"id": "after", "type": f"{language}.pid"},
        ],
        [{"from": "crash", "port": "error", "to": "after"}],
    )
    result = await host.run(flow)
    assert result.nodes["crash"].error is not None
    assert result.nodes["crash"].error["code"] == "sidecar_unavailable"
    assert result.nodes["after"].status.value == "completed", result.nodes["after"].error
    assert result.nodes["after"].output["pid"] != pid
    sidecar = grpc_runtime(host).sidecars.known("kit")
    assert sidecar is not None and sidecar.restarts >= 1


@pytest.mark.parametrize(("language", "command"), LANGUAGES)
async def test_a_hung_handler_times_out_and_the_sidecar_keeps_serving(
    project: SidecarProject, host: Host, language: str, command: list[str]
) -> None:
    project.sidecar("kit", command=command)
    flow = project.workflow(
        [
            {"id": "hang", "type": f"{language}.hang", "timeout": "300ms"},
            {"id": "next", "type": f"{language}.echo", "with": {"ok": True}},
        ],
        [{"from": "hang", "port": "error", "to": "next"}],
    )
    with anyio.fail_after(10):
        result = await host.run(flow)
    assert result.nodes["hang"].error is not None
    assert result.nodes["hang"].error["code"] == "timeout"
    assert result.nodes["next"].output["params"] == {"ok": True}


@pytest.mark.parametrize(("language", "command"), LANGUAGES)
async def test_a_sidecar_of_another_protocol_version_is_refused(
    project: SidecarProject, host: Host, language: str, command: list[str]
) -> None:
    project.sidecar("kit", command=command, env={"POLYHOST_TESTKIT_PROTOCOL": "2.0"})
    with pytest.raises(CompileError) as caught:
        await host.run(project.workflow([{"id": "e", "type": f"{language}.echo"}]))
    message = caught.value.diagnostics[0].message
    assert "sidecar kit could not list its node types" in message
    assert "2.0" in message


async def test_the_compiler_checks_parameters_against_a_sidecars_schema(
    mixed: SidecarProject, host: Host
) -> None:
    with pytest.raises(CompileError) as caught:
        await host.run(mixed.workflow([{"id": "s", "type": "go.sleep", "with": {"ms": "soon"}}]))
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.node, diagnostic.field) == ("s", "with.ms")


def test_polyhost_nodes_lists_sidecar_types_with_runtime_grpc(mixed: SidecarProject) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "polyhost.cli",
            "nodes",
            "--nodes",
            str(mixed.root / "polyhost.toml"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=mixed.root,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = {entry["type"]: entry for entry in json.loads(done.stdout)}
    for name in ("go.echo", "ts.echo", "geo.distance", "text.slugify"):
        assert listed[name]["runtime"] == "grpc", name
    assert listed["geo.distance"]["input_schema"]["required"] == ["from", "to"]


@pytest.mark.parametrize(("language", "command"), LANGUAGES)
async def test_cancelling_a_run_during_a_sidecar_call_ends_it_promptly(
    project: SidecarProject, host: Host, language: str, command: list[str]
) -> None:
    project.sidecar("kit", command=command)
    flow = project.workflow([{"id": "s", "type": f"{language}.sleep", "with": {"ms": 30_000}}])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            results = []

            async def run() -> None:
                results.append(await host.run(flow))

            tasks.start_soon(run)
            await anyio.sleep(1.0)
            tasks.cancel_scope.cancel()
    assert results == []  # cancelled, not finished
    # The channel and the sidecar stay usable (that the handler sees the cancel is tested by
    # the SDKs' own suites).
    with anyio.fail_after(5):
        again = await host.run(project.workflow([{"id": "e", "type": f"{language}.echo"}]))
    assert again.status is RunStatus.COMPLETED


def test_no_sidecar_outlives_a_killed_host(mixed: SidecarProject) -> None:
    flow = mixed.workflow([{"id": "g", "type": "go.pid"}, {"id": "t", "type": "ts.pid"}])
    kill_host_and_check_sidecars_exit(flow, ["g", "t"], mixed.root / "home")


@pytest.mark.parametrize("trusted", [True, False])
async def test_a_remote_sidecar_over_tls_with_a_token(
    project: SidecarProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=sidecar.test",
         "-addext", "subjectAltName=DNS:sidecar.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    env = {**os.environ, "POLYHOST_LISTEN": f"127.0.0.1:{port}", "POLYHOST_SIDECAR_TOKEN": "t0ken"}
    env.update(POLYHOST_TLS_CERT=str(cert), POLYHOST_TLS_KEY=str(key))
    with subprocess.Popen(GO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as remote:
        try:
            assert remote.stdout is not None
            assert remote.stdout.readline().startswith(b"POLYHOST_SIDECAR_READY")
            monkeypatch.setenv("KIT_TOKEN", "t0ken")
            settings: dict[str, object] = {"tls": True, "server_name": "sidecar.test"}
            if trusted:
                settings["ca_file"] = str(cert)
            project.sidecar(
                "kit", endpoint=f"127.0.0.1:{port}", token_env="KIT_TOKEN", discover=False,
                start_timeout=3, **settings,
            )  # fmt: skip
            project.node_type("go.echo", "kit")
            async with Host(HostConfig(home=tmp_path / "home"), store=None) as host:
                result = await host.run(
                    project.workflow([{"id": "e", "type": "go.echo", "with": {"a": 1}}])
                )
        finally:
            remote.kill()
    if trusted:
        assert result.status is RunStatus.COMPLETED, result.error
        assert result.nodes["e"].output["params"] == {"a": 1}
    else:  # the sidecar's certificate is not signed by a trusted root
        assert result.error is not None
        assert result.error["code"] == "sidecar_unavailable"
        assert "t0ken" not in result.error["message"]
        assert "CERTIFICATE_VERIFY_FAILED" in result.error["message"]
