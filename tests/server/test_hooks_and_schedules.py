"""Triggers through real servers: webhooks with and without signatures, and a schedule that two
`polyhost serve` processes on one store fire once per due time."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.server import ServerProcess, running_server

SECRET = "hook-secret-value-0042"

HOOKED: dict[str, Any] = {
    "version": 1,
    "id": "orders",
    "inputs": {
        "type": "object",
        "properties": {"order": {"type": "object"}, "source": {"type": "string"}},
        "required": ["order"],
    },
    "triggers": [
        {
            "webhook": "orders",
            "secret_env": "ORDERS_SECRET",
            "inputs": {
                "order": "{{ request.json }}",
                "source": "{{ request.headers['x-source'] }}",
            },
        },
        {"webhook": "open-orders"},
    ],
    "nodes": [{"id": "echo", "type": "core.transform", "with": {"value": "{{ input.order.id }}"}}],
    "outputs": {"id": "{{ echo.value }}"},
}


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def wait_done(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        result: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if result["status"] != "running" or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_webhook_signatures_and_input_mapping(tmp_path: Path) -> None:
    with (
        running_server(tmp_path / "home", env={"ORDERS_SECRET": SECRET}) as server,
        server.client() as client,
    ):
        assert client.put("/workflows/orders", json=HOOKED).status_code == 201
        body = json.dumps({"id": 7, "total": 12.5}).encode()
        headers = {"content-type": "application/json", "x-source": "shop"}
        problem(client.post("/hooks/orders", content=body, headers=headers), 401, "bad_signature")
        wrong = {**headers, "x-polyhost-signature": sign(body, "not-the-secret")}
        problem(client.post("/hooks/orders", content=body, headers=wrong), 401, "bad_signature")
        tampered = {**headers, "x-polyhost-signature": sign(body)}
        problem(
            client.post("/hooks/orders", content=body + b" ", headers=tampered),
            401,
            "bad_signature",
        )
        assert client.get("/runs").json()["runs"] == []  # nothing started

        right = {**headers, "x-polyhost-signature": sign(body)}
        accepted = client.post("/hooks/orders", content=body, headers=right)
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["execution_id"]
        result = wait_done(client, run_id)
        assert result["status"] == "completed"
        assert result["outputs"] == {"id": 7}
        [row] = client.get("/runs").json()["runs"]
        assert row["trigger"] == "webhook"
        assert row["workflow_id"] == "orders"
        assert row["workflow_version"] == 1

        # Without `inputs`, the JSON body is the inputs, validated like any run's.
        bad = client.post("/hooks/open-orders", json={"nothing": True})
        problem(bad, 422, "invalid_inputs")
        good = client.post("/hooks/open-orders", json={"order": {"id": 9}})
        assert good.status_code == 202
        assert wait_done(client, good.json()["execution_id"])["outputs"] == {"id": 9}
        problem(client.post("/hooks/unknown", json={}), 404, "webhook_not_found")
        # Undeployed: its webhooks stop.
        assert client.delete("/workflows/orders").status_code == 204
        problem(
            client.post("/hooks/open-orders", json={"order": {"id": 1}}), 404, "webhook_not_found"
        )
    assert SECRET not in server.output() + server.stderr()


def test_a_webhook_without_a_secret_needs_the_token(tmp_path: Path) -> None:
    token = "api-token-for-hooks-0007"
    with running_server(tmp_path / "home", token=token) as server:
        with server.client() as client:
            assert client.put("/workflows/orders", json=HOOKED).status_code == 201
        with httpx.Client(base_url=server.api, timeout=10) as bare:
            problem(bare.post("/hooks/open-orders", json={"order": {"id": 1}}), 401, "unauthorized")
        with server.client() as client:
            assert client.post("/hooks/open-orders", json={"order": {"id": 1}}).status_code == 202


def test_two_servers_fire_each_due_time_once(tmp_path: Path) -> None:
    every_second = {
        "version": 1,
        "id": "tick",
        "triggers": [{"schedule": "* * * * * *", "tz": "Europe/Paris", "inputs": {"n": 1}}],
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": [{"id": "t", "type": "core.transform", "with": {"value": "{{ input.n }}"}}],
    }
    home = tmp_path / "home"
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tick.json").write_text(json.dumps(every_second))
    with running_server(home, "--workflows", str(flows)) as first:
        second_server: ServerProcess
        with running_server(home, "--workflows", str(flows)) as second_server:
            time.sleep(10)
            second_server.stop()
        first.stop()
    db = sqlite3.connect(home / "polyhost.db")
    try:
        rows = db.execute(
            "SELECT run_id, started_at FROM runs WHERE workflow_id = 'tick' ORDER BY started_at"
        ).fetchall()
        fires = db.execute("SELECT due_at, run_id FROM trigger_fires ORDER BY due_at").fetchall()
    finally:
        db.close()
    due = [f[0] for f in fires]
    assert len(due) == len(set(due)), "a due time fired twice"
    assert len(due) >= 8, due  # about one a second for 10 s
    assert all(b - a == 1 for a, b in itertools.pairwise(due)), due
    assert len(rows) == len(due)
    assert {f[1] for f in fires} == {r[0] for r in rows}
