"""``llm.chat`` against a real OpenAI-compatible server running a real model: llama.cpp's server
with SmolLM2-135M-Instruct, started by the tests (``make llm-server`` builds it).

Replies are asserted on behaviour (order, chunks, usage, schema, the tool round trip), never on
prose: the model is small, and its server's prompt cache makes even temperature 0 vary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from polyhost import Catalog, Host, HostConfig, NodeContext, RunStatus
from polyhost.events._events import Event, EventType
from tests.llm.conftest import LlmServer, cancel_at_first_chunk

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[2]


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    catalog = Catalog.with_builtins()

    @catalog.node(
        "t.add",
        description="Adds two integers",
        input_schema={
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    )
    def add(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        return {"sum": params["a"] + params["b"]}

    async with Host(HostConfig(home=tmp_path / "home"), catalog=catalog) as h:
        yield h


def workflow(tmp_path: Path, server: LlmServer, **with_: Any) -> Path:
    params = {"base_url": server.base_url, "model": server.model, "temperature": 0, "seed": 1}
    node = {"id": "ask", "type": "llm.chat", "with": {**params, **with_}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"version": 1, "id": "real", "nodes": [node]}))
    return path


async def run(host: Host, path: Path) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    result = await host.run(path, on_event=events.append)
    return result, events


async def test_the_reply_streams_in_order_and_usage_is_counted_by_the_server_tokenizer(
    host: Host, llm_server: LlmServer, tmp_path: Path
) -> None:
    path = workflow(tmp_path, llm_server, prompt="Write one sentence about tea.", max_tokens=24)
    result, events = await run(host, path)

    assert result.status is RunStatus.COMPLETED, result.error
    output = result.nodes["ask"].output
    deltas = [
        e.data["data"]["delta"]
        for e in events
        if e.type is EventType.NODE_CHUNK and e.node == "ask"
    ]
    assert len(deltas) >= 2
    assert "".join(deltas) == output["text"]
    last_chunk = max(i for i, e in enumerate(events) if e.type is EventType.NODE_CHUNK)
    completed = next(i for i, e in enumerate(events) if e.type is EventType.NODE_COMPLETED)
    assert last_chunk < completed
    assert output["finish_reason"] in ("stop", "length")
    # This server sends no usage chunk: the node counts, with the server's own tokenizer.
    usage = output["usage"]
    assert usage["estimated"] is True
    assert usage["prompt_tokens"] > 5
    assert 0 < usage["completion_tokens"] <= 26
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert result.usage == usage


async def test_cancelling_closes_the_stream_and_the_server_stops_generating(
    host: Host, llm_server: LlmServer, tmp_path: Path
) -> None:
    # The server serves one request at a time: had it gone on generating 1,500 tokens for the
    # cancelled node (some 20 s), the next run would wait behind it past its 10 s timeout.
    long = workflow(tmp_path, llm_server, prompt="Count from 1 to 2000.", max_tokens=1500)
    result = await cancel_at_first_chunk(host, long)
    assert result.status is RunStatus.CANCELLED

    short = tmp_path / "short"
    short.mkdir()
    path = workflow(short, llm_server, prompt="Say hi.", max_tokens=8)
    document = json.loads(path.read_text())
    document["nodes"][0]["timeout"] = "10s"
    path.write_text(json.dumps(document))
    result, _ = await run(host, path)
    assert result.status is RunStatus.COMPLETED, result.error


async def test_a_structured_reply_matches_its_schema(
    host: Host, llm_server: LlmServer, tmp_path: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative"]}},
        "required": ["sentiment"],
        "additionalProperties": False,
    }
    path = workflow(
        tmp_path,
        llm_server,
        prompt="Is this review positive or negative? 'I love this tea, it is wonderful.'",
        response_format=schema,
        max_tokens=48,
    )
    result, _ = await run(host, path)
    assert result.status is RunStatus.COMPLETED, result.error
    output = result.nodes["ask"].output
    assert output["json"]["sentiment"] in ("positive", "negative")
    assert json.loads(output["text"]) == output["json"]


async def test_a_tool_round_trip_through_the_router(
    host: Host, llm_server: LlmServer, tmp_path: Path
) -> None:
    # This server offers tools only when a call is forced: tool_choice names the tool for the
    # first request, the later one is free to answer.
    path = workflow(
        tmp_path,
        llm_server,
        system="Use the tool to add numbers.",
        prompt="What is 20 plus 22?",
        tools=["t.add"],
        tool_choice="t_add",
        max_tokens=48,
    )
    result, events = await run(host, path)

    assert result.status is RunStatus.COMPLETED, result.error
    steps = result.nodes["ask"].output["steps"]
    assert [s["kind"] for s in steps] == ["model", "tool", "model"]
    call, tool, answer = steps
    assert call["finish_reason"] == "tool_calls"
    assert tool["node_type"] == "t.add"
    arguments = tool["arguments"]
    assert tool["output"] == {"sum": arguments["a"] + arguments["b"]}
    assert answer["finish_reason"] in ("stop", "length")
    assert answer["text"] == result.nodes["ask"].output["text"]
    kinds = [next(iter(e.data["data"])) for e in events if e.type is EventType.NODE_CHUNK]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("delta")


async def test_the_context_window_counts_with_the_server_tokenizer(
    host: Host, llm_server: LlmServer, tmp_path: Path
) -> None:
    history: list[dict[str, str]] = []
    for i in range(12):
        history.append({"role": "user", "content": f"Fact {i}: " + "tea is a drink. " * 12})
        history.append({"role": "assistant", "content": "Noted."})
    history.append({"role": "user", "content": "Say ok."})
    path = workflow(
        tmp_path,
        llm_server,
        system="You are brief.",
        messages=history,
        max_context_tokens=300,
        max_tokens=8,
    )
    result, _ = await run(host, path)
    assert result.status is RunStatus.COMPLETED, result.error
    context = result.nodes["ask"].output["context"]
    assert context["counted_by"] == "server"
    assert context["dropped"] > 0
    assert context["tokens"] <= 300


async def test_a_prompt_longer_than_the_model_context_fails_clearly(
    host: Host, llm_server: LlmServer, tmp_path: Path
) -> None:
    # The server is started with a 2,048-token context; this prompt is about 3,000 tokens.
    path = workflow(tmp_path, llm_server, prompt="tea is a drink. " * 600, max_tokens=8)
    result, _ = await run(host, path)
    error = result.nodes["ask"].error
    assert error is not None and error["code"] == "llm_unavailable"
    assert "before any of the reply" in error["message"]
    assert "context" in error["message"]
    # The server is still there for the next request.
    result, _ = await run(host, workflow(tmp_path, llm_server, prompt="Say ok.", max_tokens=4))
    assert result.status is RunStatus.COMPLETED, result.error


def test_the_example_summarises_the_csv_query_with_the_local_model(
    llm_server: LlmServer, tmp_path: Path
) -> None:
    example = ROOT / "examples" / "llm" / "summarise.yaml"
    env = {
        **os.environ,
        "POLYHOST_HOME": str(tmp_path),
        "OPENAI_BASE_URL": llm_server.base_url,
    }
    env.pop("OPENAI_API_KEY", None)
    polyhost = Path(sys.executable).parent / "polyhost"
    done = subprocess.run(
        [
            str(polyhost),
            "run",
            str(example),
            "--input",
            f"model={llm_server.model}",
            "--input",
            "tool_choice=example_percent_change",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,  # the example's CSV paths are relative to the repository
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert result["outputs"]["summary"].strip()
    assert result["outputs"]["tokens"] > 0
    assert result["usage"]["total_tokens"] == result["outputs"]["tokens"]
    regions = {row["region"] for row in result["nodes"]["totals"]["output"]["rows"]}
    assert regions == {"north", "south", "east", "west"}
    # The python tool ran through the router, on the arguments the model gave it.
    steps = result["nodes"]["summary"]["output"]["steps"]
    (tool,) = [s for s in steps if s["kind"] == "tool"]
    assert tool["node_type"] == "example.percent_change"
    assert "percent" in tool["output"]
    # `runs show` prints what the run cost.
    shown = subprocess.run(
        [str(polyhost), "runs", "show", result["execution_id"]],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=60,
        check=True,
    )
    usage = result["usage"]
    line = next(line for line in shown.stdout.splitlines() if line.startswith("tokens"))
    assert f"{usage['total_tokens']:,} ({usage['prompt_tokens']:,} prompt" in line
