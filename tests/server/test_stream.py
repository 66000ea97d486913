"""The event stream (`GET /runs/{id}/stream`) of a real server: replay then live, reconnection
with Last-Event-ID, runs executing in another process, heartbeats, stalled clients, load."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.helpers.cli import POLYHOST
from tests.helpers.server import ServerProcess, running_server
from tests.helpers.sse import Message, aparse, parse


def loop_flow(
    iterations: int, pause: str | None = "10ms", workflow_id: str = "ticks"
) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"id": "tick", "type": "core.wait", "with": {"duration": pause}}
        if pause
        else {"id": "tick", "type": "core.transform", "with": {"value": "{{ loop.index }}"}}
    )
    return {
        "version": 1,
        "id": workflow_id,
        "nodes": [
            {
                "id": "each",
                "type": "core.loop",
                "with": {"count": iterations, "max_iterations": iterations},
                "body": {"nodes": [body]},
            }
        ],
    }


def chain_flow(length: int) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "core.transform", "with": {"value": i}} for i in range(length)]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(length - 1)]
    return {"version": 1, "id": "chain", "nodes": nodes, "edges": edges}


def start(server: ServerProcess, flow: dict[str, Any], **body: Any) -> str:
    answer = httpx.post(
        f"{server.api}/runs", json={"workflow": flow, **body}, headers=server.headers(), timeout=30
    )
    assert answer.status_code in (200, 202), answer.text
    run_id: str = answer.json()["execution_id"]
    return run_id


def read_stream(
    server: ServerProcess,
    run_id: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    stop_after: int | None = None,
) -> list[Message]:
    """Messages until the server closes the stream (or ``stop_after`` events: then the
    connection is dropped)."""
    messages: list[Message] = []
    url = f"{server.api}/runs/{run_id}/stream"
    with httpx.stream(
        "GET", url, headers={**server.headers(), **(headers or {})}, params=params, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in parse(response.iter_lines()):
            messages.append(message)
            if stop_after is not None and len([m for m in messages if m.id]) >= stop_after:
                break
    return messages


def seqs(messages: list[Message]) -> list[int]:
    return [int(m.id) for m in messages if m.id is not None]


def test_stream_replays_then_goes_live_then_closes(server: ServerProcess) -> None:
    run_id = start(server, loop_flow(40))
    messages = read_stream(server, run_id)
    events = [m for m in messages if m.id]
    numbers = seqs(messages)
    assert numbers == list(range(1, len(numbers) + 1))
    assert events[0].event == "run.started"
    assert events[-1].event == "run.completed"
    for message in events:
        payload = message.json
        assert payload["seq"] == int(message.id or 0)
        assert payload["type"] == message.event
        assert payload["run_id"] == run_id
    stored = httpx.get(f"{server.api}/runs/{run_id}/events").json()["events"]
    assert [e["seq"] for e in stored] == numbers
    # A finished run's stream replays everything and closes at once.
    again = read_stream(server, run_id)
    assert seqs(again) == numbers


def test_reconnect_with_last_event_id_misses_nothing(server: ServerProcess) -> None:
    run_id = start(server, loop_flow(150))
    received: list[int] = []
    last: int | None = None
    drops = 0
    while True:
        headers = {"last-event-id": str(last)} if last is not None else None
        messages = read_stream(server, run_id, headers=headers, stop_after=25)
        batch = seqs(messages)
        received += batch
        if batch:
            last = batch[-1]
        if messages and any(m.event == "run.completed" for m in messages):
            break
        drops += 1
        time.sleep(0.05)  # away for a while; the run goes on
        assert drops < 200
    assert drops >= 3  # the run really was interrupted several times
    assert received == list(range(1, len(received) + 1))
    # ?after= works the same way.
    tail = read_stream(server, run_id, params={"after": len(received) - 3})
    assert seqs(tail) == [len(received) - 2, len(received) - 1, len(received)]


def test_stream_of_a_run_executing_in_another_process(
    server: ServerProcess, tmp_path: Path
) -> None:
    flow = tmp_path / "elsewhere.yaml"
    flow.write_text(
        "version: 1\nid: elsewhere\nnodes:\n"
        "  - id: each\n    type: core.loop\n    with: {count: 30}\n"
        "    body:\n      nodes:\n        - {id: tick, type: core.wait, with: {duration: 20ms}}\n"
    )
    env = {**os.environ, "POLYHOST_HOME": str(server.home)}
    other = subprocess.Popen(
        [str(POLYHOST), "run", str(flow), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        run_id = None
        while run_id is None and time.monotonic() < deadline:
            rows = httpx.get(f"{server.api}/runs").json()["runs"]
            run_id = rows[0]["execution_id"] if rows else None
            time.sleep(0.02)
        assert run_id is not None
        messages = read_stream(server, run_id)
    finally:
        _, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    numbers = seqs(messages)
    assert numbers == list(range(1, len(numbers) + 1))
    assert messages[-1].event == "run.completed"
    assert numbers[-1] == len(httpx.get(f"{server.api}/runs/{run_id}/events").json()["events"])


def test_heartbeats_while_a_run_is_paused(tmp_path: Path) -> None:
    approval = {
        "version": 1,
        "id": "wait_for_me",
        "nodes": [{"id": "ask", "type": "core.approval", "with": {"prompt": "go?"}}],
    }
    with running_server(tmp_path / "home", "--heartbeat", "0.2") as server:
        run_id = start(server, approval, wait=10)
        with httpx.stream("GET", f"{server.api}/runs/{run_id}/stream", timeout=10) as response:
            messages: list[Message] = []
            for message in parse(response.iter_lines()):
                messages.append(message)
                if sum(1 for m in messages if m.comments) >= 2:
                    break
        assert [m.event for m in messages if m.id][-1] == "run.paused"
        assert any("keep-alive" in c for m in messages for c in m.comments)


def test_shutdown_ends_streams_with_a_comment(tmp_path: Path) -> None:
    with running_server(tmp_path / "home") as server:
        run_id = start(
            server,
            {
                "version": 1,
                "id": "approve",
                "nodes": [{"id": "ask", "type": "core.approval", "with": {"prompt": "go?"}}],
            },
            wait=10,
        )
        with httpx.stream("GET", f"{server.api}/runs/{run_id}/stream", timeout=20) as response:
            lines = response.iter_lines()
            seen: list[Message] = []
            for message in parse(lines):
                seen.append(message)
                if message.event == "run.paused":
                    break
            server.proc.send_signal(15)
            rest = list(parse(lines))
        assert any("shutting down" in c for m in rest for c in m.comments)
        assert server.proc.wait(timeout=30) == 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def timed_run(server: ServerProcess, flow: dict[str, Any]) -> float:
    began = time.monotonic()
    answer = httpx.post(f"{server.api}/runs", json={"workflow": flow, "wait": 120}, timeout=130)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed"
    return time.monotonic() - began


def test_a_stalled_client_slows_no_run_and_grows_no_memory(server: ServerProcess) -> None:
    flow = loop_flow(5000, pause=None, workflow_id="many")  # 10,000+ events
    timed_run(server, flow)  # warm up
    alone = timed_run(server, flow)
    before = rss_kib(server.proc.pid)
    # A client that subscribes to the next run and then reads nothing at all.
    import socket

    run_id = start(server, loop_flow(5000, pause=None, workflow_id="many"), wait=False)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    stalled = socket.create_connection((host, int(port)))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f"GET /api/v1/runs/{run_id}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        deadline = time.monotonic() + 120
        while httpx.get(f"{server.api}/runs/{run_id}").json()["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with_stalled = timed_run(server, flow)
        after = rss_kib(server.proc.pid)
    finally:
        stalled.close()
    assert with_stalled < alone * 2 + 1.0, (alone, with_stalled)
    assert after - before < 64 * 1024, (before, after)  # KiB
    assert (
        len(
            httpx.get(f"{server.api}/runs/{run_id}/events", params={"limit": 10000}).json()[
                "events"
            ]
        )
        == 10000
    )


@pytest.mark.anyio
async def test_100_concurrent_runs_each_with_a_subscriber(server: ServerProcess) -> None:
    flow = chain_flow(100)
    received: dict[str, list[int]] = {}
    ends: dict[str, str] = {}

    async def one(client: httpx.AsyncClient) -> None:
        answer = await client.post("/runs", json={"workflow": flow})
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["execution_id"]
        numbers: list[int] = []
        async with client.stream("GET", f"/runs/{run_id}/stream") as response:
            assert response.status_code == 200
            async for message in aparse(response.aiter_lines()):
                if message.id is not None:
                    numbers.append(int(message.id))
                    ends[run_id] = message.event or ""
        received[run_id] = numbers

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with (
        httpx.AsyncClient(base_url=server.api, timeout=120, limits=limits) as client,
        anyio.create_task_group() as tasks,
    ):
        for _ in range(100):
            tasks.start_soon(one, client)
    assert len(received) == 100
    for run_id, numbers in received.items():
        assert numbers == list(range(1, 203)), (
            run_id
        )  # started, 100 x (started, completed), completed
        assert ends[run_id] == "run.completed"


def test_sigterm_hands_runs_on_to_the_next_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    slow = loop_flow(40, pause="100ms", workflow_id="handed_on")
    with running_server(home) as first:
        run_id = start(first, slow)
        time.sleep(0.5)
        assert first.stop() == 0
    # Still running in the store, released: the next server takes it over at once.
    with running_server(home) as second:
        deadline = time.monotonic() + 60
        while True:
            result = httpx.get(f"{second.api}/runs/{run_id}").json()
            if result["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert result["status"] == "completed"
        events = httpx.get(f"{second.api}/runs/{run_id}/events", params={"limit": 10000}).json()
        numbers = [e["seq"] for e in events["events"]]
        assert numbers == list(range(1, len(numbers) + 1))
        assert events["events"][-1]["type"] == "run.completed"


def test_cancelling_a_paused_run_ends_its_stream(server: ServerProcess) -> None:
    approval = {
        "version": 1,
        "id": "cancel_me",
        "nodes": [{"id": "ask", "type": "core.approval", "with": {"prompt": "go?"}}],
    }
    run_id = start(server, approval, wait=10)
    with httpx.stream("GET", f"{server.api}/runs/{run_id}/stream", timeout=30) as response:
        lines = response.iter_lines()
        for message in parse(lines):
            if message.event == "run.paused":
                break
        cancelled = httpx.post(f"{server.api}/runs/{run_id}/cancel", timeout=10)
        assert cancelled.json()["status"] == "cancelled"
        rest = [m for m in parse(lines) if m.id]
    assert [m.event for m in rest] == ["run.cancelled"]
    stored = httpx.get(f"{server.api}/runs/{run_id}/events").json()["events"]
    assert stored[-1]["type"] == "run.cancelled"
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
