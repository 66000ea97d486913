"""``llm.chat``'s own cost: the node against the bare ``openai`` client, streaming the same request
from the same local server (llama.cpp with SmolLM2-135M-Instruct, ``make llm-server``), in turns.

- ``first_chunk``: from the start (``Host.run`` for the node, ``create`` for the client) to the
  node's first ``node.chunk`` event / the client's first text delta (goal: within 1 ms);
- ``total``: to the end of the run / of the stream (goal: within 5%).

The node runs in a host without a store (its own cost) and, apart, with the default SQLite store
(a durable run commits its start before the node runs). Prints one JSON object.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import run_and_print
from openai import AsyncOpenAI

from polyhost import Host, HostConfig
from polyhost.events._events import Event, EventType
from polyhost.workflow._model import Workflow

ROOT = Path(__file__).parents[1]
SERVER_PYTHON = ROOT / ".cache" / "llm" / "venv" / "bin" / "python"
MODELS = ROOT / ".cache" / "llm" / "models"
ROUNDS = 30
REQUEST: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Name three kinds of tea."},
    ],
    "max_tokens": 32,
    "temperature": 0,
    "seed": 1,
}


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    models = sorted(MODELS.glob("*.gguf"))
    if not SERVER_PYTHON.exists() or not models:
        sys.exit("the local LLM server is not built: run `make llm-server`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    proc = subprocess.Popen(
        [
            *(str(SERVER_PYTHON), "-m", "llama_cpp.server", "--model", str(models[0])),
            *("--model_alias", "bench", "--host", "127.0.0.1", "--port", str(port)),
            *("--n_ctx", "2048", "--n_threads", "2", "--interrupt_requests", "False"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                return proc, base_url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("the local LLM server did not start")


async def bare(client: AsyncOpenAI) -> tuple[float, float]:
    begin = time.perf_counter()
    first = 0.0
    stream = await client.chat.completions.create(
        model="bench", stream=True, stream_options={"include_usage": True}, **REQUEST
    )
    async with stream:
        async for chunk in stream:
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
    return first - begin, time.perf_counter() - begin


async def node(host: Host, workflow: Any) -> tuple[float, float]:
    first = 0.0

    def on_event(event: Event) -> None:
        nonlocal first
        if not first and event.type is EventType.NODE_CHUNK:
            first = time.perf_counter()

    begin = time.perf_counter()
    result = await host.run(workflow, on_event=on_event)
    end = time.perf_counter()
    assert result.ok, result.error
    return first - begin, end - begin


def summary(bare_times: list[tuple[float, float]], node_times: list[tuple[float, float]]) -> Any:
    first_bare = statistics.median(t[0] for t in bare_times)
    first_node = statistics.median(t[0] for t in node_times)
    total_bare = statistics.median(t[1] for t in bare_times)
    total_node = statistics.median(t[1] for t in node_times)
    # Paired differences: each node run next to the bare run before it, so server drift cancels.
    first_diffs = [n[0] - b[0] for b, n in zip(bare_times, node_times, strict=True)]
    return {
        "first_chunk_ms": {
            "bare_median": round(first_bare * 1000, 3),
            "node_median": round(first_node * 1000, 3),
            "node_minus_bare_median_of_pairs": round(statistics.median(first_diffs) * 1000, 3),
            "goal_ms": 1.0,
        },
        "total_ms": {
            "bare_median": round(total_bare * 1000, 2),
            "node_median": round(total_node * 1000, 2),
            "ratio": round(total_node / total_bare, 4),
            "goal_ratio": 1.05,
        },
    }


async def main() -> dict[str, Any]:
    proc, base_url = start_server()
    try:
        client = AsyncOpenAI(base_url=base_url, api_key="no-key", max_retries=0)
        document = {
            "version": 1,
            "id": "bench-llm",
            "nodes": [
                {
                    "id": "ask",
                    "type": "llm.chat",
                    "with": {"base_url": base_url, "model": "bench", "max_retries": 0, **REQUEST},
                }
            ],
        }
        workflow = Workflow.model_validate(document)
        results: dict[str, Any] = {"rounds": ROUNDS, "server": "llama.cpp, SmolLM2-135M-Q4_1"}
        with tempfile.TemporaryDirectory() as home:
            for label, store in (("no_store", None), ("sqlite_store", "default")):
                config = HostConfig(home=Path(home) / label)
                kwargs: dict[str, Any] = {} if store else {"store": None}
                async with Host(config, **kwargs) as host:
                    compiled = host.compile(workflow)
                    for _ in range(3):  # warm both: connections, the server's prompt cache
                        await bare(client)
                        await node(host, compiled)
                    bare_times, node_times = [], []
                    for _ in range(ROUNDS):
                        bare_times.append(await bare(client))
                        node_times.append(await node(host, compiled))
                    results[label] = summary(bare_times, node_times)
        await client.close()
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    run_and_print(main)
