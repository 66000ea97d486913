"""Every endpoint of the HTTP API against a real `polyhost serve`: what succeeds, what each
failure answers (status, problem+json, stable code), and that no traceback reaches a client."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.helpers.server import ServerProcess

FLOW: dict[str, Any] = {
    "version": 1,
    "id": "double",
    "inputs": {
        "type": "object",
        "properties": {"n": {"type": "integer", "default": 2}},
        "required": ["n"],
    },
    "nodes": [{"id": "twice", "type": "core.transform", "with": {"value": "{{ input.n * 2 }}"}}],
    "outputs": {"answer": "{{ twice.value }}"},
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
    "nodes": [{"id": "boom", "type": "core.fail", "with": {"message": "no luck"}}],
}

SLOW: dict[str, Any] = {
    "version": 1,
    "id": "slow",
    "nodes": [{"id": "nap", "type": "core.wait", "with": {"duration": "20s"}}],
}


def is_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def wait_status(
    client: httpx.Client, run_id: str, wanted: set[str], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if result["status"] in wanted or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_health_nodes_and_openapi(server: ServerProcess) -> None:
    with server.client() as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.json()["version"]
        types = {entry["type"]: entry for entry in client.get("/nodes").json()}
        assert types["core.transform"]["runtime"] == "python"
        assert "csv.query" in types
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}/stream",
        "/api/v1/workflows/{workflow_id}",
        "/api/v1/hooks/{name}",
    ):
        assert path in paths
    schemas = document["components"]["schemas"]
    # Request bodies are documented from the models that validate them.
    assert "StartRunRequest" in schemas
    assert "inputs" in schemas["StartRunRequest"]["properties"]
    assert "RunSummaryModel" in schemas
    # Answers are typed too: a run's result, its record, what starting one answers.
    result = paths["/api/v1/runs/{run_id}"]["get"]["responses"]["200"]
    assert result["content"]["application/json"]["schema"]["$ref"].endswith("/RunResultModel")
    started = paths["/api/v1/runs"]["post"]["responses"]
    assert started["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunAccepted")
    assert started["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Problem")
    assert set(schemas["RunResultModel"]["properties"]) >= {
        "execution_id",
        "status",
        "outputs",
        "error",
        "duration_ms",
        "nodes",
        "pause",
    }


def test_compile_reports_diagnostics(server: ServerProcess) -> None:
    with server.client() as client:
        good = client.post("/compile", json={"workflow": FLOW})
        assert good.status_code == 200
        assert good.json() == {"ok": True, "diagnostics": []}
        broken = {**FLOW, "nodes": [{"id": "x", "type": "no.such"}]}
        bad = client.post("/compile", json={"workflow": broken}).json()
        assert bad["ok"] is False
        errors = [d for d in bad["diagnostics"] if d["severity"] == "error"]
        assert {"node": "x", "code": "unknown_node_type"} in [
            {"node": d["node"], "code": d["code"]} for d in errors
        ]
        as_yaml = client.post("/compile", json={"workflow": "version: 1\nnodes: [\n"}).json()
        assert as_yaml["ok"] is False
        assert "YAML" in as_yaml["diagnostics"][0]["message"]


def test_ad_hoc_run_waits_for_its_result(server: ServerProcess) -> None:
    with server.client() as client:
        answer = client.post("/runs", json={"workflow": FLOW, "inputs": {"n": 21}, "wait": 10})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["status"] == "completed"
        assert result["outputs"] == {"answer": 42}
        # The same object as `polyhost run --json`, kept in the history.
        shown = client.get(f"/runs/{result['execution_id']}").json()
        assert shown["outputs"] == {"answer": 42}
        assert shown["nodes"]["twice"]["status"] == "completed"
        # An id prefix works when it is unique.
        assert (
            client.get(f"/runs/{result['execution_id'][:12]}").json()["execution_id"]
            == (result["execution_id"])
        )


def test_run_without_wait_is_accepted_then_listed(server: ServerProcess) -> None:
    with server.client() as client:
        answer = client.post("/runs", json={"workflow": FLOW, "inputs": {"n": 1}})
        assert answer.status_code == 202
        run_id = answer.json()["execution_id"]
        assert answer.json()["status"] in {"running", "completed"}
        # Recorded before the answer: readable at once.
        assert client.get(f"/runs/{run_id}").status_code == 200
        assert wait_status(client, run_id, {"completed"})["outputs"] == {"answer": 2}
        page = client.get("/runs", params={"limit": 10}).json()
        [row] = [r for r in page["runs"] if r["execution_id"] == run_id]
        assert row["workflow_id"] == "double"
        assert row["status"] == "completed"
        assert row["trigger"] == "api"
        assert row["ended_at"] >= row["started_at"]
        events = client.get(f"/runs/{run_id}/events").json()["events"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[0]["type"] == "run.started"
        assert events[-1]["type"] == "run.completed"
        later = client.get(f"/runs/{run_id}/events", params={"after": 2, "limit": 1}).json()
        assert [e["seq"] for e in later["events"]] == [3]


def test_history_filters_and_cursor(server: ServerProcess) -> None:
    with server.client() as client:
        for n in range(3):
            client.post("/runs", json={"workflow": FLOW, "inputs": {"n": n}, "wait": 10})
        client.post("/runs", json={"workflow": FAILING, "wait": 10})
        first = client.get("/runs", params={"limit": 2, "workflow": "double"}).json()
        assert len(first["runs"]) == 2
        assert first["next_cursor"]
        rest = client.get(
            "/runs", params={"limit": 2, "workflow": "double", "cursor": first["next_cursor"]}
        ).json()
        ids = [r["execution_id"] for r in first["runs"] + rest["runs"]]
        assert len(ids) == len(set(ids)) == 3
        failed = client.get("/runs", params={"status": "failed"}).json()["runs"]
        assert [r["workflow_id"] for r in failed] == ["failing"]
        is_problem(client.get("/runs", params={"status": "bogus"}), 400, "malformed_request")
        is_problem(client.get("/runs", params={"cursor": "%%%"}), 422, "invalid_inputs")


def test_bad_requests_are_problems(server: ServerProcess) -> None:
    with server.client() as client:
        is_problem(client.get("/runs/nope"), 404, "run_not_found")
        is_problem(client.get("/runs/nope/events"), 404, "run_not_found")
        is_problem(client.get("/runs/nope/stream"), 404, "run_not_found")
        is_problem(client.post("/runs/nope/cancel"), 404, "run_not_found")
        is_problem(client.get("/no/such/path"), 404, "not_found")
        is_problem(
            client.post(
                "/runs", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
            "malformed_request",
        )
        is_problem(
            client.post("/runs", json={"workflow": FLOW, "typo": 1}), 400, "malformed_request"
        )
        is_problem(client.post("/runs", json=[1, 2]), 400, "malformed_request")
        deep = b"[" * 100_000 + b"]" * 100_000
        body = is_problem(
            client.post("/runs", content=deep, headers={"content-type": "application/json"}),
            400,
            "limit_exceeded",
        )
        assert "depth" in body["detail"]
        invalid = client.post("/runs", json={"workflow": {**FLOW, "nodes": [{"id": "a b"}]}})
        problem = is_problem(invalid, 422, "compile_error")
        assert problem["diagnostics"]
        inputs = client.post("/runs", json={"workflow": FLOW, "inputs": {"n": "two"}})
        problem = is_problem(inputs, 422, "invalid_inputs")
        assert problem["diagnostics"][0]["field"] == "n"
        # No run was started for refused requests.
        assert client.get("/runs").json()["runs"] == []


def test_body_over_the_limit_is_413(tmp_path: Any) -> None:
    from tests.helpers.server import running_server

    with running_server(
        tmp_path / "home", env={"POLYHOST_LIMIT_MAX_DOCUMENT_BYTES": "4096"}
    ) as srv:
        big = json.dumps({"workflow": FLOW, "inputs": {"pad": "x" * 20 * 1024 * 1024}})
        with srv.client() as client:
            answer = client.post("/runs", content=big, headers={"content-type": "application/json"})
            is_problem(answer, 413, "body_too_large")
            assert client.get("/health").status_code == 200


def test_pause_resume_and_conflicts(server: ServerProcess) -> None:
    with server.client() as client:
        paused = client.post("/runs", json={"workflow": APPROVAL, "wait": 10}).json()
        assert paused["status"] == "paused"
        run_id = paused["execution_id"]
        assert paused["pause"]
        refused = client.post(f"/runs/{run_id}/resume", json={"inputs": {"ok": "yes"}})
        is_problem(refused, 422, "invalid_inputs")
        resumed = client.post(f"/runs/{run_id}/resume", json={"inputs": {"ok": True}})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["execution_id"] == run_id
        done = wait_status(client, run_id, {"completed"})
        assert done["outputs"] == {"answer": True}
        is_problem(
            client.post(f"/runs/{run_id}/resume", json={"inputs": {}}), 409, "invalid_run_state"
        )
        is_problem(client.post(f"/runs/{run_id}/retry"), 409, "invalid_run_state")


def test_cancel_retry_rerun(server: ServerProcess) -> None:
    with server.client() as client:
        slow = client.post("/runs", json={"workflow": SLOW}).json()
        cancelled = client.post(f"/runs/{slow['execution_id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["execution_id"] == slow["execution_id"]
        assert wait_status(client, slow["execution_id"], {"cancelled"})["status"] == "cancelled"

        failed = client.post("/runs", json={"workflow": FAILING, "wait": 10}).json()
        assert failed["status"] == "failed"
        assert failed["error"]["node"] == "boom"
        retried = client.post(f"/runs/{failed['execution_id']}/retry")
        assert retried.status_code == 200
        again = wait_status(client, failed["execution_id"], {"failed"})
        assert again["nodes"]["boom"]["attempts"] >= 1

        done = client.post("/runs", json={"workflow": FLOW, "inputs": {"n": 5}, "wait": 10}).json()
        rerun = client.post(f"/runs/{done['execution_id']}/rerun")
        assert rerun.status_code == 201
        fresh = rerun.json()
        assert fresh["execution_id"] != done["execution_id"]
        assert fresh["trigger"] == "rerun"
        assert wait_status(client, fresh["execution_id"], {"completed"})["outputs"] == {
            "answer": 10
        }


def test_deploy_versions_and_runs(server: ServerProcess) -> None:
    with server.client() as client:
        first = client.put("/workflows/double", json=FLOW)
        assert first.status_code == 201, first.text
        assert first.json()["version"] == 1
        same = client.put("/workflows/double", json=FLOW)
        assert same.status_code == 200
        assert same.json()["version"] == 1
        assert same.json()["hash"] == first.json()["hash"]
        changed = {**FLOW, "description": "now documented"}
        second = client.put("/workflows/double", json=changed)
        assert second.status_code == 201
        assert second.json()["version"] == 2
        yaml_text = "version: 1\nnodes:\n  - {id: hi, type: core.transform, with: {value: 1}}\n"
        as_yaml = client.put(
            "/workflows/hello", content=yaml_text, headers={"content-type": "application/yaml"}
        )
        assert as_yaml.status_code == 201, as_yaml.text
        listed = {w["id"]: w for w in client.get("/workflows").json()["workflows"]}
        assert listed["double"]["version"] == 2
        assert "hello" in listed
        detail = client.get("/workflows/double").json()
        assert [v["version"] for v in detail["versions"]] == [1, 2]
        assert detail["document"]["description"] == "now documented"

        answer = client.post("/workflows/double/runs", json={"inputs": {"n": 4}, "wait": 10})
        assert answer.status_code == 200, answer.text
        run = answer.json()
        assert run["outputs"] == {"answer": 8}
        old = client.post(
            "/workflows/double/runs", params={"version": 1}, json={"inputs": {"n": 1}, "wait": 10}
        ).json()
        assert old["status"] == "completed"
        rows = {r["execution_id"]: r for r in client.get("/runs").json()["runs"]}
        assert rows[run["execution_id"]]["workflow_version"] == 2
        assert rows[old["execution_id"]]["workflow_version"] == 1

        bad = client.put(
            "/workflows/broken", json={"version": 1, "nodes": [{"id": "x", "type": "no.such"}]}
        )
        assert is_problem(bad, 422, "compile_error")["diagnostics"][0]["node"] == "x"
        is_problem(client.post("/workflows/nothing/runs", json={}), 404, "workflow_not_found")
        is_problem(
            client.post("/workflows/double/runs", params={"version": 9}, json={}),
            404,
            "workflow_not_found",
        )

        assert client.delete("/workflows/double").status_code == 204
        is_problem(client.get("/workflows/double"), 404, "workflow_not_found")
        is_problem(client.delete("/workflows/double"), 404, "workflow_not_found")
        # History is kept.
        assert client.get(f"/runs/{run['execution_id']}").json()["status"] == "completed"


def test_tokens_are_required_and_never_shown(secured_server: ServerProcess) -> None:
    token = secured_server.token
    assert token is not None
    with httpx.Client(base_url=secured_server.api, timeout=10) as bare:
        assert bare.get("/health").status_code == 200
        is_problem(bare.get("/runs"), 401, "unauthorized")
        wrong = {"authorization": "Bearer wrong"}
        is_problem(bare.get("/runs", headers=wrong), 401, "unauthorized")
        is_problem(bare.get("/runs", headers={"authorization": token}), 401, "unauthorized")
    with secured_server.client() as client:
        assert client.get("/runs").status_code == 200
        echoed = client.post("/runs", json={"workflow": FLOW, "inputs": {"n": token}})
        problem = is_problem(echoed, 422, "invalid_inputs")
        assert token not in json.dumps(problem)
    secured_server.stop()
    assert token not in secured_server.output()
    assert token not in secured_server.stderr()
