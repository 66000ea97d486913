"""A run of two ``llm.chat`` nodes on a real ``polyhost serve``, against a scripted
OpenAI-compatible server on a real socket: the run's result sums the tokens its nodes used,
``polyhost runs show --server`` prints them, the event stream carries each reply's words in
order, and the API key the server was allowed to read never comes back out of it."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.cli import POLYHOST
from tests.helpers.server import ServerProcess, running_server
from tests.helpers.sse import Message, parse
from tests.llm.fake_openai import FakeOpenAI, Stream, usage

KEY_ENV = "POLYHOST_TEST_LLM_KEY"
KEY = "sk-usage-test-5f0c9e1a7b3d42c8"
FIRST = ["Rain ", "is ", "likely."]
SECOND = ["Take ", "an ", "umbrella."]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def llm_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server allowed to read the key's variable, which holds the key."""
    with running_server(tmp_path / "home", "--env", KEY_ENV, env={KEY_ENV: KEY}) as started:
        yield started


def chat(node_id: str, prompt: str, fake: FakeOpenAI) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "llm.chat",
        "with": {
            "model": "fake-model",
            "base_url": fake.base_url,
            "api_key_env": KEY_ENV,
            "prompt": prompt,
        },
    }


def two_chats(fake: FakeOpenAI) -> dict[str, Any]:
    return {
        "version": 1,
        "id": "two-chats",
        "nodes": [
            chat("forecast", "Will it rain?", fake),
            chat("advice", "Given this: {{ forecast.text }} What should I take?", fake),
        ],
        "edges": [{"from": "forecast", "to": "advice"}],
        "outputs": {"advice": "{{ advice.text }}"},
    }


def stream_to_end(server: ServerProcess, run_id: str) -> tuple[str, list[Message]]:
    """The run's whole event stream (raw text and messages), read until the server closes it
    at the run's end."""
    lines: list[str] = []
    with httpx.stream("GET", f"{server.api}/runs/{run_id}/stream", timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            lines.append(line)
    return "\n".join(lines), list(parse(iter(lines)))


def test_a_run_sums_its_nodes_tokens_and_never_shows_the_key(
    fake: FakeOpenAI, llm_server: ServerProcess, tmp_path: Path
) -> None:
    fake.script(
        Stream(FIRST, usage=usage(21, 4), delay=0.05),
        Stream(SECOND, usage=usage(35, 6), delay=0.05),
    )
    started = httpx.post(f"{llm_server.api}/runs", json={"workflow": two_chats(fake)}, timeout=30)
    assert started.status_code in (200, 202), started.text
    run_id: str = started.json()["execution_id"]
    answers = [started.text]

    raw_stream, messages = stream_to_end(llm_server, run_id)
    events = [message.json for message in messages if message.id is not None]
    assert events[-1]["type"] == "run.completed", events[-1]

    # Each reply's words arrive as `node.chunk` events, in order, the first reply ahead of the
    # second (which is asked only once the first is done).
    chunks = [(e["node"], e["data"]["data"]) for e in events if e["type"] == "node.chunk"]
    assert chunks == [("forecast", {"delta": word, "step": 1}) for word in FIRST] + [
        ("advice", {"delta": word, "step": 1}) for word in SECOND
    ]

    result = httpx.get(f"{llm_server.api}/runs/{run_id}", timeout=30)
    answers.append(result.text)
    body = result.json()
    assert body["status"] == "completed"
    assert body["outputs"] == {"advice": "".join(SECOND)}
    assert body["nodes"]["forecast"]["output"]["usage"]["total_tokens"] == 25
    assert body["nodes"]["advice"]["output"]["usage"]["total_tokens"] == 41
    assert body["usage"] == {
        "prompt_tokens": 56,
        "completion_tokens": 10,
        "total_tokens": 66,
        "estimated": False,
    }

    shown = subprocess.run(
        [str(POLYHOST), "runs", "show", run_id, "--server", llm_server.url],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path / "cli-home"),
        timeout=90,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^tokens\s+66 \(56 prompt \+ 10 completion\) *$", shown.stdout, re.M), (
        shown.stdout
    )
    assert "estimated" not in shown.stdout

    for path in (f"/runs/{run_id}/record", f"/runs/{run_id}/events", "/runs"):
        answer = httpx.get(f"{llm_server.api}{path}", timeout=30)
        assert answer.status_code == 200, answer.text
        answers.append(answer.text)

    # The key did reach the model's server, in the Authorization header of both requests ...
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {KEY}"] * 2
    # ... and nowhere else: not in an answer, the stream, the command's output or the server's.
    llm_server.stop()
    seen = {
        "api answers": "\n".join(answers),
        "event stream": raw_stream,
        "runs show": shown.stdout + shown.stderr,
        "server stdout": llm_server.output(),
        "server stderr": llm_server.stderr(),
    }
    assert seen["api answers"] and seen["event stream"] and seen["server stdout"]
    leaks = [where for where, text in seen.items() if KEY in text]
    assert not leaks, leaks


def cli_env(home: Path) -> dict[str, str]:
    """The command's environment: a home of its own, none of the caller's server or token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYHOST_")}
    env.pop("COLUMNS", None)
    return {**env, "POLYHOST_HOME": str(home), "NO_COLOR": "1"}
