"""``llm.chat`` against a scripted OpenAI-compatible server on a real socket: what a real server
will not do on demand (429s, replies cut short, malformed chunks, tool calls of a given shape).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from polyhost import Catalog, CompileError, Host, HostConfig, NodeContext, RunStatus
from polyhost.events._events import Event, EventType
from tests.llm.conftest import cancel_at_first_chunk
from tests.llm.fake_openai import (
    CutStream,
    EndedStream,
    Error,
    FakeOpenAI,
    HangingStream,
    MalformedChunk,
    Stream,
    tool_call_delta,
    usage,
)

pytestmark = pytest.mark.anyio

KEY = "sk-test-4f9a7c2e1b-secret"


def llm_catalog() -> Catalog:
    catalog = Catalog.with_builtins()

    @catalog.node(
        "acme.lookup",
        description="Looks up a customer's plan by id",
        input_schema={
            "type": "object",
            "properties": {"customer": {"type": "string"}},
            "required": ["customer"],
            "additionalProperties": False,
        },
    )
    async def lookup(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        ctx.log(f"looking up {params['customer']}")
        if params["customer"] == "nobody":
            raise LookupError("no such customer")
        return {"customer": params["customer"], "plan": "gold"}

    @catalog.node("acme.slow", input_schema={"type": "object"})
    async def slow(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        await anyio.sleep(30)
        return {}

    return catalog


@pytest.fixture
async def llm_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Host]:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    config = HostConfig(
        home=tmp_path / "home", env_allow=["FAKE_LLM_KEY"], allowed_roots=[tmp_path]
    )
    async with Host(config, catalog=llm_catalog()) as host:
        yield host


def chat_node(fake: FakeOpenAI, **with_: Any) -> dict[str, Any]:
    params = {
        "base_url": fake.base_url,
        "api_key_env": "FAKE_LLM_KEY",
        "model": "fake-model",
        "prompt": "Say hello",
        "max_retries": 0,
        **with_,
    }
    return {"id": "ask", "type": "llm.chat", "with": params}


def workflow(tmp_path: Path, *nodes: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"version": 1, "id": "llm", "nodes": list(nodes), **extra}))
    return path


async def run(host: Host, path: Path) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    result = await host.run(path, on_event=events.append)
    return result, events


def chunks(events: list[Event], node: str = "ask") -> list[Any]:
    return [e.data["data"] for e in events if e.type is EventType.NODE_CHUNK and e.node == node]


def bodies(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.path.endswith("/chat/completions")]


# streaming, usage, the request ---------------------------------------------------------------


async def test_each_delta_is_a_chunk_in_order_and_the_output_holds_the_whole_reply(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(Stream(["Hel", "lo", ", wor", "ld"], usage=usage(12, 4)))
    node = chat_node(
        fake_openai, system="Be brief.", temperature=0, seed=7, max_tokens=32, stop=["\n\n"]
    )
    result, events = await run(llm_host, workflow(tmp_path, node))

    assert result.status is RunStatus.COMPLETED, result.error
    assert [c["delta"] for c in chunks(events)] == ["Hel", "lo", ", wor", "ld"]
    output = result.nodes["ask"].output
    assert output["text"] == "Hello, world"
    assert output["finish_reason"] == "stop"
    assert output["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 4,
        "total_tokens": 16,
        "estimated": False,
    }
    assert result.usage == output["usage"]
    (body,) = bodies(fake_openai)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert (body["temperature"], body["seed"], body["max_tokens"], body["stop"]) == (
        0,
        7,
        32,
        ["\n\n"],
    )
    # The key goes to the server, and nowhere else.
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in json.dumps([e.to_dict() for e in events])
    assert KEY not in json.dumps(result.to_dict())


async def test_without_a_usage_chunk_usage_is_counted_and_marked_estimated(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        Stream(["one two three four"], usage=None), Stream(["five"], usage=usage(3, 1))
    )
    first = chat_node(fake_openai)
    second = {**chat_node(fake_openai), "id": "again"}
    result, _ = await run(
        llm_host, workflow(tmp_path, first, second, edges=[{"from": "ask", "to": "again"}])
    )

    assert result.status is RunStatus.COMPLETED, result.error
    estimated = result.nodes["ask"].output["usage"]
    assert estimated["estimated"] is True
    assert estimated["prompt_tokens"] > 0 and estimated["completion_tokens"] > 0
    # The run's usage sums its nodes', estimated if any part is.
    assert result.usage == {
        "prompt_tokens": estimated["prompt_tokens"] + 3,
        "completion_tokens": estimated["completion_tokens"] + 1,
        "total_tokens": estimated["total_tokens"] + 4,
        "estimated": True,
    }


async def test_runs_show_prints_the_run_usage(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(Stream(["hi"], usage=usage(1200, 34)))
    result, _ = await run(llm_host, workflow(tmp_path, chat_node(fake_openai)))
    assert result.status is RunStatus.COMPLETED, result.error
    stored = llm_host.history.result(result.execution_id)
    assert stored.usage == {
        "prompt_tokens": 1200,
        "completion_tokens": 34,
        "total_tokens": 1234,
        "estimated": False,
    }


# errors ---------------------------------------------------------------------------------------


async def test_a_429_is_retried_after_its_retry_after(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        Error(429, "slow down", type="rate_limit_error", retry_after="1"),
        Stream(["ok"], usage=usage(1, 1)),
    )
    node = {**chat_node(fake_openai), "retry": {"attempts": 2, "delay": "10ms"}}
    result, events = await run(llm_host, workflow(tmp_path, node))

    assert result.status is RunStatus.COMPLETED, result.error
    (retrying,) = [e for e in events if e.type is EventType.NODE_RETRYING]
    assert retrying.data["error"]["code"] == "llm_rate_limited"
    assert "slow down" in retrying.data["error"]["message"]
    assert retrying.data["delay"] >= 1.0  # the server's Retry-After, not the policy's 10 ms
    assert result.nodes["ask"].attempts == 2


async def test_a_stream_ended_before_any_reply_says_what_usually_causes_it(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(EndedStream(Stream(["never sent"]), after=0))
    result, events = await run(llm_host, workflow(tmp_path, chat_node(fake_openai)))
    error = result.nodes["ask"].error
    assert error is not None and error["code"] == "llm_unavailable"
    assert fake_openai.base_url in error["message"]
    assert "before any of the reply" in error["message"]
    assert "max_context_tokens" in error["message"]
    assert chunks(events) == []


async def test_the_client_own_retries_cover_a_5xx(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(Error(503, "overloaded", retry_after="0"), Stream(["fine"]))
    result, _ = await run(llm_host, workflow(tmp_path, chat_node(fake_openai, max_retries=1)))
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["ask"].output["text"] == "fine"
    assert result.nodes["ask"].attempts == 1
    assert len(bodies(fake_openai)) == 2


@pytest.mark.parametrize(
    ("reply", "code", "requests"),
    [
        (Error(400, "model 'nope' not found", type="invalid_request_error"), "llm_bad_request", 1),
        (Error(401, f"Incorrect API key provided: {KEY}", type="auth_error"), "llm_auth", 1),
        (Error(500, "boom"), "llm_unavailable", 3),
        (CutStream(Stream(["a", "b", "c"]), after=2), "llm_unavailable", 3),
        (EndedStream(Stream(["a", "b", "c"]), after=2), "llm_unavailable", 3),
        (MalformedChunk(Stream(["a", "b"]), after=1), "llm_invalid_reply", 1),
    ],
    ids=["400", "401", "500", "cut-mid-stream", "ended-mid-reply", "malformed-chunk"],
)
async def test_server_failures_fail_the_node_with_a_typed_code(
    llm_host: Host,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    reply: Any,
    code: str,
    requests: int,
) -> None:
    # Retryable failures are tried again by the node's retry policy; the others are not.
    fake_openai.script(*[reply] * 3)
    node = {**chat_node(fake_openai), "retry": {"attempts": 3, "delay": "1ms"}}
    result, _ = await run(llm_host, workflow(tmp_path, node))

    assert result.status is RunStatus.FAILED
    error = result.nodes["ask"].error
    assert error is not None
    assert error["code"] == code
    assert result.error is not None and result.error["node"] == "ask"
    assert len(bodies(fake_openai)) == requests
    assert KEY not in json.dumps(result.to_dict())
    if code == "llm_bad_request":
        assert "model 'nope' not found" in error["message"]  # the server's own words


async def test_an_unreachable_server_is_named_and_the_key_is_not(
    llm_host: Host, tmp_path: Path
) -> None:
    with anyio.fail_after(30):
        fake = FakeOpenAI()
        fake.start()
        base_url = fake.base_url
        fake.close()  # nothing listens there now
    node = {
        "id": "ask",
        "type": "llm.chat",
        "with": {
            "base_url": base_url,
            "api_key_env": "FAKE_LLM_KEY",
            "model": "m",
            "prompt": "hi",
            "max_retries": 0,
        },
    }
    result, _ = await run(llm_host, workflow(tmp_path, node))
    error = result.nodes["ask"].error
    assert error is not None and error["code"] == "llm_unavailable"
    assert base_url in error["message"]
    assert KEY not in json.dumps(result.to_dict())


async def test_a_key_variable_the_host_does_not_allow_is_refused(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-workflows")
    node = chat_node(fake_openai, api_key_env="AWS_SECRET_ACCESS_KEY")
    result, _ = await run(llm_host, workflow(tmp_path, node))
    error = result.nodes["ask"].error
    assert error is not None
    assert (error["code"], error["field"]) == ("invalid_parameters", "with.api_key_env")
    assert fake_openai.requests == []  # nothing was sent anywhere


# cancel and timeout close the stream -----------------------------------------------------------


async def test_a_timeout_closes_the_http_stream(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(HangingStream(Stream(["thinking", "..."]), after=2))
    node = {**chat_node(fake_openai), "timeout": "500ms"}
    result, events = await run(llm_host, workflow(tmp_path, node))
    assert result.status is RunStatus.FAILED
    assert result.nodes["ask"].error["code"] == "timeout"
    assert [c["delta"] for c in chunks(events)] == ["thinking"]
    await fake_openai.await_disconnects(1)


async def test_cancelling_the_run_closes_the_http_stream(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(HangingStream(Stream(["thinking", "..."]), after=2))
    result = await cancel_at_first_chunk(llm_host, workflow(tmp_path, chat_node(fake_openai)))
    assert result.status is RunStatus.CANCELLED
    await fake_openai.await_disconnects(1)


# tools -----------------------------------------------------------------------------------------


def tool_round(*calls: tuple[str, str, dict[str, Any]]) -> Stream:
    pieces = []
    for index, (call_id, name, arguments) in enumerate(calls):
        text = json.dumps(arguments)
        pieces.append(tool_call_delta(index, id=call_id, name=name, arguments=text[:5]))
        pieces.append(tool_call_delta(index, arguments=text[5:]))
    return Stream(tool_calls=pieces, finish_reason="tool_calls", usage=usage(20, 5))


async def test_tool_calls_run_node_types_and_their_results_go_back_to_the_model(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("region,amount\nnorth,10\nsouth,32\nnorth,5\n")
    fake_openai.script(
        tool_round(
            ("call_a", "acme_lookup", {"customer": "c-42"}),
            ("call_b", "sales", {"where": "region == 'north'"}),
        ),
        Stream(["c-42 is on gold; north sold 15."], usage=usage(60, 9)),
    )
    tools = ["acme.lookup", {"type": "csv.query", "name": "sales", "with": {"path": str(data)}}]
    result, events = await run(llm_host, workflow(tmp_path, chat_node(fake_openai, tools=tools)))

    assert result.status is RunStatus.COMPLETED, result.error
    output = result.nodes["ask"].output
    assert output["text"] == "c-42 is on gold; north sold 15."
    assert output["usage"]["total_tokens"] == 25 + 69  # both requests
    first, second = bodies(fake_openai)
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(offered) == {"acme_lookup", "sales"}
    assert offered["acme_lookup"]["description"] == "Looks up a customer's plan by id"
    assert offered["acme_lookup"]["parameters"]["required"] == ["customer"]
    assert "path" not in offered["sales"]["parameters"]["properties"]  # fixed by the workflow
    # The second request carries the assistant's calls and each tool's answer, in order.
    assistant, answer_a, answer_b = second["messages"][-3:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert answer_a["tool_call_id"] == "call_a"
    assert json.loads(answer_a["content"]) == {"customer": "c-42", "plan": "gold"}
    rows = json.loads(answer_b["content"])["rows"]
    assert [r["amount"] for r in rows] == [10, 5]
    kinds = [(s["kind"], s.get("name")) for s in output["steps"]]
    assert kinds == [("model", None), ("tool", "acme_lookup"), ("tool", "sales"), ("model", None)]
    assert output["steps"][1]["node_type"] == "acme.lookup"
    # Every step is an event: the calls and their results stream as chunks; tool logs are the
    # node's, marked with the tool.
    seen = [next(iter(c)) for c in chunks(events)]
    assert seen.count("tool_call") == 2 and seen.count("tool_result") == 2
    logs = [e.data for e in events if e.type is EventType.LOG and e.node == "ask"]
    assert {"message": "looking up c-42", "tool": "acme_lookup"}.items() <= logs[0].items()


async def test_a_failing_tool_is_reported_to_the_model_not_a_crash(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        tool_round(
            ("c1", "acme_lookup", {"customer": "nobody"}),
            ("c2", "acme_lookup", {"wrong": 1}),
            ("c3", "no_such_tool", {}),
        ),
        Stream(["I could not find that customer."]),
    )
    result, _ = await run(
        llm_host, workflow(tmp_path, chat_node(fake_openai, tools=["acme.lookup"]))
    )
    assert result.status is RunStatus.COMPLETED, result.error
    answers = [json.loads(m["content"]) for m in bodies(fake_openai)[1]["messages"][-3:]]
    codes = [a["error"]["code"] for a in answers]
    assert codes == ["handler_error", "invalid_parameters", "invalid_parameters"]
    assert "no such customer" in answers[0]["error"]["message"]
    assert answers[1]["error"]["field"].startswith("tools.acme_lookup")


async def test_a_model_that_keeps_calling_tools_stops_at_max_steps(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(*[tool_round((f"c{i}", "acme_lookup", {"customer": "x"})) for i in range(3)])
    node = chat_node(fake_openai, tools=["acme.lookup"], max_steps=3)
    result, _ = await run(llm_host, workflow(tmp_path, node))
    error = result.nodes["ask"].error
    assert error is not None and error["code"] == "llm_max_steps"
    assert len(bodies(fake_openai)) == 3


async def test_tools_are_checked_when_the_workflow_compiles(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    node = chat_node(fake_openai, tools=["acme.lookup", "acme.nope", "core.loop"])
    with pytest.raises(CompileError) as caught:
        await llm_host.run(workflow(tmp_path, node))
    found = {(d.code, d.field) for d in caught.value.diagnostics}
    assert ("unknown_node_type", "with.tools[1]") in found
    assert ("invalid_parameters", "with.tools[2]") in found


# structured replies ----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"enum": ["positive", "negative"]}, "score": {"type": "number"}},
    "required": ["sentiment", "score"],
}


async def test_a_reply_that_breaks_the_schema_gets_one_repair_round(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        Stream(['{"sentiment": "great"}']),
        Stream(['```json\n{"sentiment": "positive", "score": 0.9}\n```']),
    )
    result, _ = await run(
        llm_host, workflow(tmp_path, chat_node(fake_openai, response_format=SCHEMA))
    )
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.nodes["ask"].output["json"] == {"sentiment": "positive", "score": 0.9}
    first, second = bodies(fake_openai)
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == SCHEMA
    assert second["messages"][-2] == {"role": "assistant", "content": '{"sentiment": "great"}'}
    assert "does not match" in second["messages"][-1]["content"]


async def test_a_reply_still_wrong_after_repair_fails_with_the_raw_text(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(Stream(["not json at all"]), Stream(["still not json"]))
    result, _ = await run(
        llm_host, workflow(tmp_path, chat_node(fake_openai, response_format=SCHEMA))
    )
    error = result.nodes["ask"].error
    assert error is not None and error["code"] == "llm_invalid_reply"
    assert "still not json" in error["message"]
    assert result.nodes["ask"].attempts == 1  # not retried: the same request would fail again


async def test_repair_rounds_zero_fails_at_the_first_bad_reply(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(Stream(['{"sentiment": "meh", "score": 1}']))
    node = chat_node(fake_openai, response_format=SCHEMA, repair_rounds=0)
    result, _ = await run(llm_host, workflow(tmp_path, node))
    assert result.nodes["ask"].error["code"] == "llm_invalid_reply"
    assert len(bodies(fake_openai)) == 1


# the context window ----------------------------------------------------------------------------


async def test_max_context_tokens_keeps_the_system_message_and_the_newest_that_fit(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    history = []
    for i in range(10):
        history.append({"role": "user", "content": f"question {i} " + "word " * 40})
        history.append({"role": "assistant", "content": f"answer {i} " + "word " * 40})
    history.append({"role": "user", "content": "and the last question?"})
    fake_openai.script(Stream(["ok"], usage=usage(100, 1)))
    node = chat_node(
        fake_openai, prompt=None, system="You are terse.", messages=history, max_context_tokens=200
    )
    del node["with"]["prompt"]
    result, events = await run(llm_host, workflow(tmp_path, node))

    assert result.status is RunStatus.COMPLETED, result.error
    sent = bodies(fake_openai)[0]["messages"]
    assert sent[0] == {"role": "system", "content": "You are terse."}
    assert sent[-1] == {"role": "user", "content": "and the last question?"}
    assert 2 < len(sent) < len(history) + 1
    assert sent[1:] == history[len(history) - (len(sent) - 1) :]  # the newest, in order
    context = result.nodes["ask"].output["context"]
    assert context["dropped"] == len(history) + 1 - len(sent)
    assert context["counted_by"] == "estimate"  # this server has no tokenizer
    assert context["tokens"] <= 200
    assert any("dropped" in e.data["message"] for e in events if e.type is EventType.LOG)


async def test_a_budget_too_small_for_the_newest_message_fails_clearly(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    node = chat_node(fake_openai, prompt="word " * 200, max_context_tokens=50)
    result, _ = await run(llm_host, workflow(tmp_path, node))
    error = result.nodes["ask"].error
    assert error is not None
    assert (error["code"], error["field"]) == ("invalid_parameters", "with.max_context_tokens")
    assert bodies(fake_openai) == []


# defaults --------------------------------------------------------------------------------------


async def test_base_url_and_model_default_from_the_manifest(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "polyhost.toml").write_text(
        f'[defaults."llm.chat"]\nbase_url = "{fake_openai.base_url}"\nmodel = "from-manifest"\n'
        'api_key_env = "FAKE_LLM_KEY"\nmax_retries = 0\n'
    )
    fake_openai.script(Stream(["hi"]))
    node = {"id": "ask", "type": "llm.chat", "with": {"prompt": "hello"}}
    result, _ = await run(llm_host, workflow(tmp_path, node))
    assert result.status is RunStatus.COMPLETED, result.error
    (body,) = bodies(fake_openai)
    assert body["model"] == "from-manifest"
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_a_model_is_required_somewhere(llm_host: Host, tmp_path: Path) -> None:
    node = {"id": "ask", "type": "llm.chat", "with": {"prompt": "hello"}}
    with pytest.raises(CompileError) as caught:
        await llm_host.run(workflow(tmp_path, node))
    assert any(d.node == "ask" and "model" in d.message for d in caught.value.diagnostics)


async def test_tools_run_in_every_runtime(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # A python function, a Rust node, a WebAssembly module and a Go sidecar, in one round.
    root = Path(__file__).parents[2]
    (tmp_path / "polyhost.toml").write_text(
        '[[nodes]]\ntype = "t.words"\nruntime = "wasm"\n'
        f'module = "{root / "wasm-nodes" / "build" / "word_count.wasm"}"\n\n'
        f'[sidecars.geo]\ncommand = ["{root / "sandboxes" / "go" / "bin" / "geo-sidecar"}"]\n'
    )
    paris, london = {"lat": 48.8566, "lon": 2.3522}, {"lat": 51.5074, "lon": -0.1278}
    fake_openai.script(
        tool_round(
            ("p", "acme_lookup", {"customer": "c-1"}),
            ("n", "text_stats", {"text": "to be or not to be", "top": 1}),
            ("w", "t_words", {"text": "one two three"}),
            ("g", "geo_distance", {"from": paris, "to": london}),
        ),
        Stream(["done"]),
    )
    tools = ["acme.lookup", "text.stats", "t.words", "geo.distance"]
    result, _ = await run(llm_host, workflow(tmp_path, chat_node(fake_openai, tools=tools)))

    assert result.status is RunStatus.COMPLETED, result.error
    answers = {
        m["tool_call_id"]: json.loads(m["content"]) for m in bodies(fake_openai)[1]["messages"][-4:]
    }
    assert answers["p"] == {"customer": "c-1", "plan": "gold"}
    assert answers["n"]["words"] == 6
    assert answers["w"]["words"] == 3
    assert 340 < answers["g"]["km"] < 347
    runtimes = {s["node_type"] for s in result.nodes["ask"].output["steps"] if s["kind"] == "tool"}
    assert runtimes == set(tools)


# hostile replies --------------------------------------------------------------------------------


async def test_hostile_tool_calls_are_answered_with_errors_not_obeyed(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    calls = [tool_call_delta(0, id="deep", name="acme_lookup", arguments=deep)]
    calls += [
        tool_call_delta(i, id=f"c{i}", name="acme_lookup", arguments='{"customer": "x"}')
        for i in range(1, 21)
    ]
    fake_openai.script(Stream(tool_calls=calls, finish_reason="tool_calls"), Stream(["ok"]))
    result, _ = await run(
        llm_host, workflow(tmp_path, chat_node(fake_openai, tools=["acme.lookup"]))
    )
    assert result.status is RunStatus.COMPLETED, result.error
    answers = [json.loads(m["content"]) for m in bodies(fake_openai)[1]["messages"][-21:]]
    assert answers[0]["error"]["code"] == "invalid_arguments"
    assert all(a == {"customer": "x", "plan": "gold"} for a in answers[1:16])
    assert all(a["error"]["code"] == "too_many_tool_calls" for a in answers[16:])


async def test_odd_unicode_in_the_reply_reaches_the_output_and_the_history(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    pieces = ["e\u0301t\u00e9 ", "\U0001f375 ", "\u202eevil\u202c ", "a\ud800b", "\x00end"]
    fake_openai.script(Stream(pieces, usage=usage(1, 5)))
    result, events = await run(llm_host, workflow(tmp_path, chat_node(fake_openai)))
    assert result.status is RunStatus.COMPLETED, result.error
    text = result.nodes["ask"].output["text"]
    # A lone surrogate (no UTF-8 can hold it) becomes U+FFFD; everything else stays as sent.
    assert text == "e\u0301t\u00e9 \U0001f375 \u202eevil\u202c a\ufffdb\x00end"
    stored = llm_host.history.result(result.execution_id)
    assert stored.nodes["ask"].output["text"] == text
    assert len(chunks(events)) == 5


async def test_a_tool_past_its_timeout_is_cancelled_and_reported(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(tool_round(("s", "acme_slow", {})), Stream(["it took too long"]))
    node = chat_node(fake_openai, tools=["acme.slow"], tool_timeout="200ms")
    result, _ = await run(llm_host, workflow(tmp_path, node))
    assert result.status is RunStatus.COMPLETED, result.error
    (answer,) = [json.loads(m["content"]) for m in bodies(fake_openai)[1]["messages"][-1:]]
    assert answer["error"]["code"] == "timeout"
    assert answer["error"]["field"] == "tools.acme_slow"
    tool = result.nodes["ask"].output["steps"][1]
    assert tool["error"]["code"] == "timeout"
    assert tool["duration_ms"] < 10_000  # not the 30 s the tool would have taken


async def test_tool_choice_forces_the_first_request_only(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(tool_round(("a", "acme_lookup", {"customer": "c"})), Stream(["ok"]))
    node = chat_node(fake_openai, tools=["acme.lookup"], tool_choice="acme_lookup")
    result, _ = await run(llm_host, workflow(tmp_path, node))
    assert result.status is RunStatus.COMPLETED, result.error
    first, second = bodies(fake_openai)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "acme_lookup"}}
    assert second["tool_choice"] == "auto"


async def test_an_unknown_tool_choice_is_found_when_the_workflow_compiles(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    offered = chat_node(fake_openai, tools=["acme.lookup"], tool_choice="nope")
    with pytest.raises(CompileError) as caught:
        await llm_host.run(workflow(tmp_path, offered))
    (problem,) = caught.value.diagnostics
    assert (problem.code, problem.node, problem.field) == (
        "invalid_parameters",
        "ask",
        "with.tool_choice",
    )
    assert "acme_lookup" in problem.message  # the names it could have been
    none_offered = chat_node(fake_openai, tool_choice="acme_lookup")
    with pytest.raises(CompileError, match="offers none"):
        await llm_host.run(workflow(tmp_path, none_offered))
    assert bodies(fake_openai) == []


async def test_a_templated_tool_choice_is_checked_when_the_node_runs(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    pick = {"id": "pick", "type": "core.transform", "with": {"value": "nope"}}
    node = chat_node(fake_openai, tools=["acme.lookup"], tool_choice="{{ pick.value }}")
    path = workflow(tmp_path, pick, node, edges=[{"from": "pick", "to": "ask"}])
    result, _ = await run(llm_host, path)
    error = result.nodes["ask"].error
    assert error is not None
    assert (error["code"], error["field"]) == ("invalid_parameters", "with.tool_choice")
    assert bodies(fake_openai) == []


async def test_a_reply_without_end_is_cut_off_before_it_fills_the_host(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    megabyte = "x" * (1024 * 1024)
    fake_openai.script(Stream([megabyte] * 6))
    result, events = await run(llm_host, workflow(tmp_path, chat_node(fake_openai)))
    error = result.nodes["ask"].error
    assert error is not None
    assert (error["code"], error["field"]) == ("llm_invalid_reply", "with.max_tokens")
    assert len(chunks(events)) == 5  # the fifth megabyte went past the 4 MiB cap


async def test_a_tool_that_would_pause_the_run_is_told_it_cannot(
    llm_host: Host, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script(
        tool_round(("a", "core_approval", {"prompt": "ok?"})), Stream(["no approval then"])
    )
    result, _ = await run(
        llm_host, workflow(tmp_path, chat_node(fake_openai, tools=["core.approval"]))
    )
    assert result.status is RunStatus.COMPLETED, result.error
    (answer,) = [json.loads(m["content"]) for m in bodies(fake_openai)[1]["messages"][-1:]]
    assert answer["error"]["code"] == "tool_cannot_pause"
