"""``polyhost.client`` against a real `polyhost serve`: every method's answer and its failure,
the token's secrecy, and an event stream that survives its connection being cut mid-run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from polyhost import RunResult, RunStatus
from polyhost.api import RunAccepted
from polyhost.client import (
    AsyncClient,
    Client,
    ConnectionFailedError,
    ServerError,
    WaitTimeoutError,
)
from tests.helpers.server import ServerProcess, running_server
from tests.helpers.tcp_relay import relay_to

DOUBLE: dict[str, Any] = {
    "version": 1,
    "id": "double",
    "inputs": {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    },
    "nodes": [{"id": "twice", "type": "core.transform", "with": {"value": "{{ input.n * 2 }}"}}],
    "outputs": {"answer": "{{ twice.value }}"},
}
DOUBLE_YAML = """\
version: 1
id: double
description: the second version
inputs:
  type: object
  properties:
    n: {type: integer}
  required: [n]
nodes:
  - id: twice
    type: core.transform
    with: {value: "{{ input.n * 2 }}"}
outputs:
  answer: "{{ twice.value }}"
"""
INVALID: dict[str, Any] = {
    "version": 1,
    "id": "broken",
    "nodes": [{"id": "first", "type": "core.transform", "with": {"value": "{{ nowhere.x }}"}}],
}
APPROVAL: dict[str, Any] = {
    "version": 1,
    "id": "approve",
    "nodes": [
        {
            "id": "ask",
            "type": "core.approval",
            "with": {
                "prompt": "ok?",
                "schema": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}},
                    "required": ["ok"],
                },
            },
        }
    ],
    "outputs": {"answer": "{{ ask.ok }}"},
}
FAILING: dict[str, Any] = {
    "version": 1,
    "id": "failing",
    "nodes": [{"id": "boom", "type": "core.fail", "with": {"message": "no luck", "code": "nope"}}],
}
SLOW: dict[str, Any] = {
    "version": 1,
    "id": "slow",
    "nodes": [{"id": "nap", "type": "core.wait", "with": {"duration": "30s"}}],
}
STEPS = 10
# Ten naps of 100 ms one after another: 22 events over about a second.
CHAIN: dict[str, Any] = {
    "version": 1,
    "id": "chain",
    "nodes": [
        {"id": f"step{i}", "type": "core.wait", "with": {"duration": "100ms"}} for i in range(STEPS)
    ],
    "edges": [{"from": f"step{i}", "to": f"step{i + 1}"} for i in range(STEPS - 1)],
}
TOKEN = "client-test-token-0123456789"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url) as opened:
        yield opened


def problem(caught: pytest.ExceptionInfo[ServerError], status: int, code: str) -> ServerError:
    error = caught.value
    assert (error.status, error.code) == (status, code), error
    assert error.detail and "Traceback" not in error.detail
    return error


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


# service -------------------------------------------------------------------------------------


def test_health_and_nodes(client: Client) -> None:
    assert client.health().status == "ok"
    assert client.health().version
    types = {node.type: node for node in client.nodes()}
    assert types["core.transform"].runtime == "python"
    assert "true" in types["core.condition"].ports


def test_a_server_that_is_not_there_is_a_connection_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, token=TOKEN) as client, pytest.raises(ConnectionFailedError) as caught:
        client.health()
    assert f"{url}/api/v1" in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert caught.value.code == "connection_failed"


def test_compile_reports_diagnostics_for_objects_and_yaml_text(client: Client) -> None:
    assert client.compile(DOUBLE).ok
    assert client.compile(DOUBLE_YAML).ok
    checked = client.compile(INVALID)
    assert not checked.ok
    assert any(d.node == "first" and d.field == "with.value" for d in checked.diagnostics)
    assert not client.compile("version: 1\nnodes: [").ok


# workflows -----------------------------------------------------------------------------------


def test_deploy_versions_list_show_and_undeploy(client: Client) -> None:
    first = client.deploy("double", DOUBLE)
    assert (first.id, first.version, first.created) == ("double", 1, True)
    again = client.deploy("double", DOUBLE)
    assert (again.version, again.created, again.hash) == (1, False, first.hash)
    second = client.deploy("double", DOUBLE_YAML)  # YAML text, sent as application/yaml
    assert (second.version, second.created) == (2, True)

    assert [w.id for w in client.workflows()] == ["double"]
    detail = client.workflow("double")
    assert detail.version == 2
    assert [v.version for v in detail.versions] == [1, 2]
    assert detail.document["description"] == "the second version"

    client.undeploy("double")
    assert client.workflows() == []
    with pytest.raises(ServerError) as caught:
        client.workflow("double")
    problem(caught, 404, "workflow_not_found")


def test_deploy_and_workflow_failures(client: Client) -> None:
    with pytest.raises(ServerError) as caught:
        client.deploy("broken", INVALID)
    error = problem(caught, 422, "compile_error")
    assert any(d.node == "first" for d in error.diagnostics)
    with pytest.raises(ServerError) as caught:
        client.undeploy("never-deployed")
    problem(caught, 404, "workflow_not_found")


# runs ----------------------------------------------------------------------------------------


def test_start_a_deployed_workflow_with_and_without_waiting(client: Client) -> None:
    client.deploy("double", DOUBLE)
    done = client.start("double", {"n": 21}, wait=30)
    assert isinstance(done, RunResult)
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"answer": 42}

    accepted = client.start("double", {"n": 5})
    assert isinstance(accepted, RunAccepted)
    result = client.wait(accepted.execution_id, timeout=30)
    assert result.outputs == {"answer": 10}
    assert result.execution_id == accepted.execution_id

    summaries = client.runs(workflow="double").runs
    assert {s.execution_id for s in summaries} == {done.execution_id, accepted.execution_id}
    assert all(s.workflow_version == 1 and s.trigger == "api" for s in summaries)


def test_start_failures(client: Client) -> None:
    client.deploy("double", DOUBLE)
    with pytest.raises(ServerError) as caught:
        client.start("double", {"n": "not a number"})
    error = problem(caught, 422, "invalid_inputs")
    assert error.field == "n"
    with pytest.raises(ServerError) as caught:
        client.start("double", {"n": 1}, version=9)
    problem(caught, 404, "workflow_not_found")


def test_an_adhoc_run_and_its_failures(client: Client) -> None:
    result = client.run(DOUBLE, {"n": 4}, wait=30)
    assert isinstance(result, RunResult)
    assert result.outputs == {"answer": 8}
    assert result.nodes["twice"].status.value == "completed"

    with pytest.raises(ServerError) as caught:
        client.run(INVALID)
    assert any(d.field == "with.value" for d in problem(caught, 422, "compile_error").diagnostics)


def test_history_pages_and_filters(client: Client) -> None:
    ids = [client.run(DOUBLE, {"n": n}, wait=30).execution_id for n in range(3)]
    failed = client.run(FAILING, wait=30)
    assert isinstance(failed, RunResult) and failed.status is RunStatus.FAILED

    first = client.runs(workflow="double", limit=2)
    assert len(first.runs) == 2 and first.next_cursor
    rest = client.runs(workflow="double", limit=2, cursor=first.next_cursor)
    listed = [run.execution_id for run in first.runs + rest.runs]
    assert listed == list(reversed(ids))
    assert [r.execution_id for r in client.runs(status="failed").runs] == [failed.execution_id]
    with pytest.raises(ServerError) as caught:
        client.runs(status="sleeping")
    assert caught.value.status in (400, 422)


def test_a_run_its_result_by_prefix_and_its_events(client: Client) -> None:
    done = client.run(DOUBLE, {"n": 1}, wait=30)
    assert isinstance(done, RunResult)
    run_id = done.execution_id
    assert client.run_result(run_id[:12]).execution_id == run_id
    events = client.events(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "run.started" and events[-1].type == "run.completed"
    assert [e.seq for e in client.events(run_id, after=1, limit=2)] == [2, 3]

    for call in (client.run_result, client.events):
        with pytest.raises(ServerError) as caught:
            call("no-such-run")
        problem(caught, 404, "run_not_found")


def test_pause_resume_and_a_resume_the_state_refuses(client: Client) -> None:
    paused = client.run(APPROVAL, wait=30)
    assert isinstance(paused, RunResult) and paused.status is RunStatus.PAUSED
    run_id = paused.execution_id
    with pytest.raises(ServerError) as caught:
        client.resume(run_id, {"ok": "yes"})
    problem(caught, 422, "invalid_inputs")

    assert client.resume(run_id, {"ok": True}).execution_id == run_id
    result = client.wait(run_id, timeout=30)
    assert result.status is RunStatus.COMPLETED and result.outputs == {"answer": True}

    with pytest.raises(ServerError) as caught:
        client.resume(run_id, {"ok": True})
    problem(caught, 409, "invalid_run_state")


def test_cancel_retry_and_rerun(client: Client) -> None:
    paused = client.run(APPROVAL, wait=30)
    assert isinstance(paused, RunResult)
    assert client.cancel(paused.execution_id).status == "cancelled"
    assert client.run_result(paused.execution_id).status is RunStatus.CANCELLED

    failed = client.run(FAILING, wait=30)
    assert isinstance(failed, RunResult)
    retried = client.retry(failed.execution_id)
    assert retried.execution_id == failed.execution_id
    assert client.wait(failed.execution_id, timeout=30).status is RunStatus.FAILED

    done = client.run(DOUBLE, {"n": 3}, wait=30)
    assert isinstance(done, RunResult)
    again = client.rerun(done.execution_id)
    assert again.execution_id != done.execution_id
    assert client.wait(again.execution_id, timeout=30).outputs == {"answer": 6}

    with pytest.raises(ServerError) as caught:
        client.retry(done.execution_id)
    problem(caught, 409, "invalid_run_state")
    for call in (client.cancel, client.rerun):
        with pytest.raises(ServerError) as caught:
            call("no-such-run")
        problem(caught, 404, "run_not_found")


def test_wait_gives_up_after_its_timeout(client: Client) -> None:
    accepted = client.run(SLOW)
    with pytest.raises(WaitTimeoutError) as caught:
        client.wait(accepted.execution_id, timeout=0.3)
    assert caught.value.status in ("pending", "running")
    client.cancel(accepted.execution_id)
    assert client.wait(accepted.execution_id, timeout=30).status is RunStatus.CANCELLED


# the event stream ----------------------------------------------------------------------------


def test_the_stream_of_an_ended_run_replays_it_and_ends(client: Client) -> None:
    done = client.run(DOUBLE, {"n": 2}, wait=30)
    assert isinstance(done, RunResult)
    stored = [e.seq for e in client.events(done.execution_id)]
    with client.stream(done.execution_id) as events:
        assert [e.seq for e in events] == stored
    with client.stream(done.execution_id, after=2) as events:
        assert [e.seq for e in events] == stored[2:]


@pytest.mark.timeout(30)
def test_a_stream_from_after_the_last_event_of_an_ended_run_is_empty(client: Client) -> None:
    done = client.run(DOUBLE, {"n": 2}, wait=30)
    assert isinstance(done, RunResult)
    last = client.events(done.execution_id)[-1].seq
    with client.stream(done.execution_id, after=last) as events:
        assert list(events) == []


def test_a_live_stream_cut_mid_run_yields_every_event_once(server: ServerProcess) -> None:
    with relay_to(server.url) as relay, Client(relay.url) as client:
        run_id = client.run(CHAIN).execution_id
        seen = []
        with client.stream(run_id) as events:
            for event in events:
                seen.append(event)
                if len(seen) in (3, 9, 15):
                    relay.cut()  # the connection drops under the client
        stored = client.events(run_id)
    assert [e.seq for e in seen] == list(range(1, len(stored) + 1))
    assert [e.model_dump() for e in seen] == [e.model_dump() for e in stored]
    assert seen[-1].type == "run.completed"
    assert len(stored) == 2 * STEPS + 2
    assert relay.connections >= 4  # the stream reconnected after each cut


def test_a_stream_stays_open_across_a_pause_until_the_run_ends(client: Client) -> None:
    paused = client.run(APPROVAL, wait=30)
    assert isinstance(paused, RunResult)
    types = []
    with client.stream(paused.execution_id) as events:
        for event in events:
            types.append(event.type)
            if event.type == "run.paused":
                client.resume(paused.execution_id, {"ok": False})
    assert "run.paused" in types and "run.resumed" in types
    assert types[-1] == "run.completed"


def test_the_stream_of_an_unknown_run_is_a_404(client: Client) -> None:
    with pytest.raises(ServerError) as caught, client.stream("no-such-run") as events:
        list(events)
    problem(caught, 404, "run_not_found")


# tokens and webhooks -------------------------------------------------------------------------


def test_the_token_is_sent_from_the_argument_or_the_environment_and_never_shown(
    secured_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = secured_server.token
    assert token
    monkeypatch.delenv("POLYHOST_API_TOKEN", raising=False)
    with Client(secured_server.url) as anonymous:
        assert anonymous.health().status == "ok"  # needs no token
        with pytest.raises(ServerError) as caught:
            anonymous.runs()
        problem(caught, 401, "unauthorized")
    with Client(secured_server.url, token="wrong-" + token) as wrong:
        with pytest.raises(ServerError) as caught:
            wrong.runs()
        assert token not in str(caught.value) and token not in repr(caught.value)
        assert token not in repr(wrong)
    with Client(secured_server.url, token=token) as given:
        assert given.runs().runs == []
    monkeypatch.setenv("POLYHOST_API_TOKEN", token)
    with Client(secured_server.url) as from_env:
        assert from_env.runs().runs == []
        with pytest.raises(ServerError) as caught:
            from_env.run_result("no-such-run")
        assert token not in str(caught.value) and token not in repr(caught.value)


def test_a_signed_webhook_starts_a_run(tmp_path: Path) -> None:
    hooked = {
        **DOUBLE,
        "id": "hooked",
        "triggers": [{"webhook": "orders", "secret_env": "ORDERS_SECRET"}],
    }
    env = {"ORDERS_SECRET": "hook-secret"}
    with running_server(tmp_path / "hooks", env=env) as served, Client(served.url) as client:
        client.deploy("hooked", hooked)
        accepted = client.hook("orders", {"n": 7}, signature_secret="hook-secret")
        assert client.wait(accepted.execution_id, timeout=30).outputs == {"answer": 14}
        raw = b'{"n": 8}'
        accepted = client.hook("orders", raw, signature_secret=b"hook-secret")
        assert client.wait(accepted.execution_id, timeout=30).outputs == {"answer": 16}

        with pytest.raises(ServerError) as caught:
            client.hook("orders", {"n": 7}, signature_secret="not-the-secret")
        problem(caught, 401, "bad_signature")
        with pytest.raises(ServerError) as caught:
            client.hook("orders", {"n": 7})
        problem(caught, 401, "bad_signature")
        with pytest.raises(ServerError) as caught:
            client.hook("nobody", {"n": 7})
        problem(caught, 404, "webhook_not_found")


# the async client ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_async_client_runs_streams_and_fails_the_same_way(
    server: ServerProcess,
) -> None:
    with relay_to(server.url) as relay:
        async with AsyncClient(relay.url) as client:
            assert (await client.health()).status == "ok"
            assert (await client.deploy("double", DOUBLE)).version == 1
            done = await client.start("double", {"n": 6}, wait=30)
            assert isinstance(done, RunResult) and done.outputs == {"answer": 12}

            run_id = (await client.run(CHAIN)).execution_id
            seen = []
            async with client.stream(run_id) as events:
                async for event in events:
                    seen.append(event.seq)
                    if len(seen) == 5:
                        relay.cut()
            assert seen == list(range(1, 2 * STEPS + 3))
            assert (await client.wait(run_id, timeout=30)).status is RunStatus.COMPLETED

            with pytest.raises(ServerError) as caught:
                await client.run_result("no-such-run")
            problem(caught, 404, "run_not_found")
            with pytest.raises(ServerError) as caught:
                await client.run(INVALID)
            problem(caught, 422, "compile_error")
