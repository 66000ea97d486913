"""The two chat-completions servers of the LLM tests, both on real loopback sockets.

``llm_server``: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct, as
`make llm-server` builds and fetches them into .cache/llm/; one per test session (the suite runs
in one process on a couple of cores). ``fake_openai``: a scripted server for the edge cases a
real one will not produce on cue (see fake_openai.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from polyhost import Host, RunResult
from polyhost.events._events import Event, EventType
from tests.llm.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
LLM_CACHE = ROOT / ".cache" / "llm"
SERVER_PYTHON = LLM_CACHE / "venv" / "bin" / "python"
MODELS = LLM_CACHE / "models"
START_TIMEOUT = 60.0
# The server's settings are pydantic settings: any variable named like one of them (PORT, MODEL,
# API_KEY, CHAT_FORMAT, ...) would change it, so it sees these alone.
PASSED_ENV = ("PATH", "HOME", "LANG", "TMPDIR")


@dataclass(frozen=True)
class LlmServer:
    """A running llama.cpp server: ``base_url`` for an OpenAI client, the ``model`` id it lists,
    ``url`` its root (for /extras/tokenize), ``log`` its output."""

    base_url: str
    model: str
    url: str
    log: Path


def _model_file() -> Path:
    models = sorted(MODELS.glob("*.gguf"))
    if not SERVER_PYTHON.exists() or not models:
        pytest.fail(
            "the LLM test server is not built (.cache/llm/): run `make llm-server`", pytrace=False
        )
    return models[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> str:
    """The id of the model the server lists once it answers GET /v1/models."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the LLM server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            answer = httpx.get(f"{base_url}/models", timeout=2)
            if answer.status_code == 200:
                model: str = answer.json()["data"][0]["id"]
                return model
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the LLM server did not answer in {START_TIMEOUT:.0f} s:\n{_tail(log)}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmServer]:
    model_file = _model_file()
    port = _free_port()
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    # No --chat_format: the server then formats chats with the template the GGUF file carries
    # (SmolLM2's own), which its log names at start. Requests wait for the one being answered
    # (one model, one generation at a time); by default a new request would end a running
    # stream early, without a finish reason, which no hosted API does.
    command = [
        str(SERVER_PYTHON),
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_file),
        "--model_alias",
        model_file.stem,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--interrupt_requests",
        "False",
    ]
    with log.open("wb") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        model = _wait_ready(proc, base_url, log)
        yield LlmServer(base_url=base_url, model=model, url=f"http://127.0.0.1:{port}", log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


async def cancel_at_first_chunk(host: Host, path: Path) -> RunResult:
    """Run the workflow at ``path`` and cancel it as soon as a node streams its first chunk."""
    first_chunk = anyio.Event()
    holder: dict[str, RunResult] = {}

    def on_event(event: Event) -> None:
        if event.type is EventType.NODE_CHUNK:
            first_chunk.set()

    async def go() -> None:
        holder["result"] = await host.run(path, on_event=on_event)

    async with anyio.create_task_group() as tg:
        tg.start_soon(go)
        with anyio.fail_after(60):
            await first_chunk.wait()
        (run_id,) = host.active_runs
        assert host.cancel(run_id)
    return holder["result"]
