"""The HTTP server against the host it serves, in one run. Prints one JSON object.

- ``runs``: "start a 3-node run and wait for its result" through the API (a deployed workflow,
  ``POST /workflows/{id}/runs`` with ``wait``) against ``Host.run`` in-process (the floor), one
  client at a time (latency) and 32 at once (runs per second, p50/p99).
- ``sse``: delivery latency of the event stream, from the event's timestamp on the server to
  its arrival at a client, with 100 subscribers (one per run, 100 runs at once, each emitting
  two events every 100 ms: 2,000 events a second in all).
- ``sse_run_in_another_process``: the same for a run that a ``polyhost run`` process executes
  on the server's store (the stream polls the store).
- ``framework``: the same JSON answer from a bare Starlette route and a FastAPI route under
  uvicorn with httptools: what FastAPI costs per request (why it was chosen: docs/server.md).

The server is a real ``polyhost serve`` process; the load comes from a minimal keep-alive
HTTP/1.1 client on asyncio (httpx costs more per request than the server does), on the same
machine, so client and server share its two cores (figures are for the pair).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from polyhost import Host, HostConfig

ROOT = Path(__file__).resolve().parents[1]
POLYHOST = Path(sys.executable).parent / "polyhost"
CLIENTS = 32
RUNS = 2000
SEQUENTIAL = 300
SUBSCRIBERS = 100


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: a load generator that costs
    a fraction of httpx per request, so the figures are the server's and not the client's."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def three_nodes() -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "core.transform", "with": {"value": i}} for i in range(3)]
    edges = [{"from": "n0", "to": "n1"}, {"from": "n1", "to": "n2"}]
    return {"version": 1, "id": "three", "nodes": nodes, "edges": edges}


def ticking(ticks: int, every: str) -> dict[str, Any]:
    return {
        "version": 1,
        "id": "ticking",
        "nodes": [
            {"id": "settle", "type": "core.wait", "with": {"duration": "1s"}},
            {
                "id": "each",
                "type": "core.loop",
                "with": {"count": ticks},
                "body": {"nodes": [{"id": "t", "type": "core.wait", "with": {"duration": every}}]},
            },
        ],
        "edges": [{"from": "settle", "to": "each"}],
    }


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


async def concurrently(
    count: int, clients: int, one: Callable[[], Awaitable[float]]
) -> dict[str, Any]:
    """``count`` calls of ``one`` by ``clients`` workers: throughput and latency."""
    latencies: list[float] = []
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            latencies.append(await one())

    began = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for _ in range(clients):
            tasks.start_soon(worker)
    elapsed = time.perf_counter() - began
    return {"runs_per_s": round(count / elapsed, 1), **quantiles(latencies)}


def start_server(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "POLYHOST_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("POLYHOST_API_TOKENS", None)
    proc = subprocess.Popen(
        [str(POLYHOST), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"serving (http://\S+?:\d+)", line)
        if match:
            return proc, match.group(1)
    raise RuntimeError("the server did not start")


async def floor(home: Path) -> dict[str, Any]:
    async with Host(HostConfig(home=home, concurrency=256)) as host:
        compiled = host.compile(host.parse(three_nodes()))

        async def one() -> float:
            began = time.perf_counter()
            result = await host.run(compiled, {})
            assert result.ok, result.error
            return time.perf_counter() - began

        for _ in range(50):
            await one()
        sequential = [await one() for _ in range(SEQUENTIAL)]
        return {
            "sequential": quantiles(sequential),
            "concurrent": await concurrently(RUNS, CLIENTS, one),
        }


async def through_api(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=60) as client:
        deployed = await client.put("/workflows/three", json=three_nodes())
        assert deployed.status_code in (200, 201), deployed.text
    body = json.dumps({"wait": 30}).encode()
    pool = [RawClient(url) for _ in range(CLIENTS)]
    free = list(pool)

    async def one() -> float:
        raw = free.pop()
        try:
            began = time.perf_counter()
            status, answer = await raw.request("POST", "/api/v1/workflows/three/runs", body)
            elapsed = time.perf_counter() - began
        finally:
            free.append(raw)
        assert status == 200 and b'"completed"' in answer, answer[:300]
        return elapsed

    try:
        for _ in range(50):
            await one()
        sequential = [await one() for _ in range(SEQUENTIAL)]
        concurrent = await concurrently(RUNS, CLIENTS, one)
    finally:
        for raw in pool:
            raw.close()
    return {"sequential": quantiles(sequential), "concurrent": concurrent}


async def sse_lines(url: str, path: str) -> AsyncIterator[bytes]:
    """The lines of an SSE body (chunked transfer encoding) read off a raw socket."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET {path} HTTP/1.1\r\nhost: {host}\r\naccept: text/event-stream\r\n\r\n".encode()
    )
    try:
        while (line := await reader.readline()) not in (b"\r\n", b""):
            pass  # the status line and headers
        pending = b""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                return
            pending += await reader.readexactly(size)
            await reader.readexactly(2)  # the chunk's CRLF
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line
    finally:
        writer.close()


async def sse_latency(url: str) -> dict[str, Any]:
    latencies: list[float] = []
    events = 0
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=120) as client:

        async def subscriber() -> None:
            nonlocal events
            answer = await client.post("/runs", json={"workflow": ticking(20, "100ms")})
            run_id = answer.json()["execution_id"]
            async for line in sse_lines(url, f"/api/v1/runs/{run_id}/stream"):
                if line.startswith(b"data: "):
                    received = time.time()
                    event = json.loads(line[6:])
                    events += 1
                    if event["seq"] > 2:  # after the subscription: live, not replayed
                        latencies.append(received - event["ts"])

        async with anyio.create_task_group() as tasks:
            for _ in range(SUBSCRIBERS):
                tasks.start_soon(subscriber)
    return {"subscribers": SUBSCRIBERS, "events": events, **quantiles(latencies)}


async def sse_other_process(url: str, home: Path, tmp: Path) -> dict[str, Any]:
    """Delivery latency for a run that another process executes on the same store (the
    stream polls the store)."""
    flow = tmp / "elsewhere.json"
    flow.write_text(json.dumps(ticking(40, "100ms")))
    env = {**os.environ, "POLYHOST_HOME": str(home)}
    runner = subprocess.Popen(
        [str(POLYHOST), "run", str(flow), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=30) as client:
            run_id = None
            while run_id is None:
                rows = (await client.get("/runs", params={"workflow": "ticking"})).json()["runs"]
                mine = [r for r in rows if r["status"] == "running" and r["trigger"] == "manual"]
                run_id = mine[0]["execution_id"] if mine else None
                await anyio.sleep(0.02)
        async for line in sse_lines(url, f"/api/v1/runs/{run_id}/stream"):
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                if event["seq"] > 2:
                    latencies.append(time.time() - event["ts"])
    finally:
        runner.wait(timeout=60)
    return {"events": len(latencies), **quantiles(latencies)}


APPS = textwrap.dedent(
    """
    import sys
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request):
        return JSONResponse({"status": "ok", "version": "0"})

    fast = FastAPI()

    @fast.get("/health")
    async def fast_health():
        return JSONResponse({"status": "ok", "version": "0"})

    bare = Starlette(routes=[Route("/health", health)])
    """
)


async def framework(tmp: Path) -> dict[str, Any]:
    (tmp / "apps.py").write_text(APPS)
    figures: dict[str, Any] = {}
    for name in ("bare", "fast"):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"apps:{name}",
                "--port",
                "0",
                "--http",
                "httptools",
                "--loop",
                "uvloop",
                "--no-access-log",
                "--log-level",
                "info",
            ],
            cwd=tmp,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            match = re.search(r"(http://\S+:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url is not None
        pool = [RawClient(url) for _ in range(CLIENTS)]
        free = list(pool)

        async def one(free: list[RawClient] = free) -> float:
            raw = free.pop()
            try:
                began = time.perf_counter()
                status, _ = await raw.request("GET", "/health")
                elapsed = time.perf_counter() - began
            finally:
                free.append(raw)
            assert status == 200
            return elapsed

        try:
            await concurrently(1000, CLIENTS, one)
            result = await concurrently(20_000, CLIENTS, one)
            figures["starlette" if name == "bare" else "fastapi"] = {
                "requests_per_s": result["runs_per_s"],
                "p50_ms": result["p50_ms"],
            }
        finally:
            for raw in pool:
                raw.close()
            proc.terminate()
            proc.wait()
            proc.stderr.close()
    figures["fastapi_vs_starlette_throughput"] = round(
        figures["fastapi"]["requests_per_s"] / figures["starlette"]["requests_per_s"], 3
    )
    return figures


async def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        floor_figures = await floor(tmp / "floor")
        proc, url = start_server(tmp / "server")
        try:
            api = await through_api(url)
            sse = await sse_latency(url)
            elsewhere = await sse_other_process(url, tmp / "server", tmp)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            assert proc.stdout is not None
            proc.stdout.close()
        frameworks = await framework(tmp)
    return {
        "benchmark": "server",
        "runs": {
            "workflow": "3-node chain, deployed, POST /workflows/{id}/runs with wait",
            "clients": CLIENTS,
            "floor_host_run": floor_figures,
            "api": api,
            "api_overhead_p50_ms_sequential": round(
                api["sequential"]["p50_ms"] - floor_figures["sequential"]["p50_ms"], 3
            ),
            "api_vs_floor_throughput": round(
                api["concurrent"]["runs_per_s"] / floor_figures["concurrent"]["runs_per_s"], 3
            ),
        },
        "sse": sse,
        "sse_run_in_another_process": elsewhere,
        "framework": frameworks,
    }


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, backend_options={"use_uvloop": True}), indent=2))
