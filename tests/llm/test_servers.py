"""The LLM tests' two servers, as the bare `openai` client sees them: the real llama.cpp server
streams a reply in order, and the fake answers each scripted reply the way OpenAI would."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.llm.conftest import LlmServer
from tests.llm.fake_openai import (
    Completion,
    CutStream,
    Error,
    FakeOpenAI,
    HangingStream,
    MalformedChunk,
    Stream,
    chat_completion,
    tool_call_delta,
    usage,
)

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count from one to ten."}]
# The server keeps the previous prompt's cache and reuses its common start, and its numbers
# depend a little on how that cache was computed: the same request can answer differently after
# different ones, even at temperature 0. Requests compared with each other each come after this
# one-token request, so both meet the same cache.
RESET: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _client(base_url: str, **options: Any) -> openai.OpenAI:
    # No retries unless a test asks: each scripted reply is seen once.
    return openai.OpenAI(base_url=base_url, api_key="sk-test-key", **{"max_retries": 0, **options})


def _aclient(base_url: str, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=base_url, api_key="sk-test-key", **{"max_retries": 0, **options}
    )


def _read(client: openai.OpenAI, received: list[str], **request: Any) -> None:
    """Stream a reply, keeping each chunk's text (empty for the role chunk) as it arrives."""
    with client.chat.completions.create(
        model="gpt-test", messages=QUESTION, stream=True, **request
    ) as stream:
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")


# The real server.


def test_real_server_streams_the_reply_in_order(llm_server: LlmServer) -> None:
    with _client(llm_server.base_url) as client:
        client.chat.completions.create(model=llm_server.model, messages=RESET, max_tokens=1)
        with client.chat.completions.create(
            model=llm_server.model,
            messages=QUESTION,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        ) as stream:
            chunks = list(stream)
        client.chat.completions.create(model=llm_server.model, messages=RESET, max_tokens=1)
        whole = client.chat.completions.create(
            model=llm_server.model, messages=QUESTION, max_tokens=16, temperature=0
        )

    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(deltas) > 1
    assert "".join(deltas) == whole.choices[0].message.content
    # The finish reason comes last, and this server sends no usage chunk, asked or not.
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)


@pytest.mark.anyio
async def test_real_server_streams_to_the_async_client_and_survives_a_cancel(
    llm_server: LlmServer,
) -> None:
    async with _aclient(llm_server.base_url) as client:
        received: list[str] = []
        with anyio.move_on_after(30) as scope:
            stream = await client.chat.completions.create(
                model=llm_server.model, messages=QUESTION, max_tokens=16, stream=True
            )
            async with stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        received.append(chunk.choices[0].delta.content)
                    if len(received) == 2:
                        scope.cancel()
        assert scope.cancelled_caught
        assert len(received) == 2

        # The server is free again at once: it stops generating when its client leaves.
        answer = await client.chat.completions.create(
            model=llm_server.model, messages=QUESTION, max_tokens=4, temperature=0
        )
        assert answer.choices[0].message.content


@pytest.mark.anyio
async def test_real_server_finishes_concurrent_streams(llm_server: LlmServer) -> None:
    finish_reasons: list[str | None] = []

    async def ask(client: openai.AsyncOpenAI) -> None:
        stream = await client.chat.completions.create(
            model=llm_server.model, messages=QUESTION, max_tokens=16, temperature=0, stream=True
        )
        async with stream:
            chunks = [chunk async for chunk in stream]
        finish_reasons.append(chunks[-1].choices[0].finish_reason)

    async with _aclient(llm_server.base_url) as client, anyio.create_task_group() as group:
        group.start_soon(ask, client)
        group.start_soon(ask, client)

    # The second waits for the first instead of cutting it short (which ends a stream
    # without a finish reason).
    assert len(finish_reasons) == 2
    assert all(reason in ("stop", "length") for reason in finish_reasons)


# The fake server.


def test_fake_streams_text_tool_calls_and_usage_as_scripted(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Stream(
            content=["Let me ", "check."],
            tool_calls=[
                tool_call_delta(0, id="call_1", name="get_weather", arguments=""),
                tool_call_delta(0, arguments='{"city": '),
                tool_call_delta(0, arguments='"Paris"}'),
            ],
            finish_reason="tool_calls",
            usage=usage(12, 7),
        )
    )
    with (
        _client(fake_openai.base_url) as client,
        client.chat.completions.create(
            model="gpt-test",
            messages=QUESTION,
            tools=[WEATHER],
            stream=True,
            stream_options={"include_usage": True},
        ) as stream,
    ):
        chunks = list(stream)

    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    assert text == ["Let me ", "check."]
    pieces = [call for c in with_choices for call in (c.choices[0].delta.tool_calls or []) if call]
    assert [(p.index, p.id) for p in pieces] == [(0, "call_1"), (0, None), (0, None)]
    assert pieces[0].function is not None and pieces[0].function.name == "get_weather"
    arguments = "".join((p.function.arguments or "") for p in pieces if p.function)
    assert json.loads(arguments) == {"city": "Paris"}
    assert with_choices[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 19
    assert {c.model for c in chunks} == {"gpt-test"}


def test_fake_records_each_request(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Completion(chat_completion("hi")))
    with _client(fake_openai.base_url) as client:
        client.chat.completions.create(
            model="gpt-test", messages=QUESTION, response_format={"type": "json_object"}
        )

    (request,) = fake_openai.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.body["messages"] == QUESTION
    assert request.body["response_format"] == {"type": "json_object"}


def test_fake_answers_other_paths_without_taking_a_reply(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Completion(chat_completion("hi")))
    root = fake_openai.base_url.removesuffix("/v1")
    probe = httpx.post(f"{root}/extras/tokenize", json={"input": "hello"})
    with _client(fake_openai.base_url) as client:
        models = client.models.list()
        answer = client.chat.completions.create(model="gpt-test", messages=QUESTION)

    assert probe.status_code == 404
    assert probe.json()["error"]["type"] == "invalid_request_error"
    assert [m.id for m in models.data] == ["fake-model"]
    assert answer.choices[0].message.content == "hi"
    assert [r.path for r in fake_openai.requests] == [
        "/extras/tokenize",
        "/v1/models",
        "/v1/chat/completions",
    ]


def test_fake_answers_a_whole_completion(fake_openai: FakeOpenAI) -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    fake_openai.script(
        Completion(
            chat_completion(None, tool_calls=[call], finish_reason="tool_calls", usage=usage(5, 3))
        )
    )
    with _client(fake_openai.base_url) as client:
        answer = client.chat.completions.create(model="gpt-test", messages=QUESTION)

    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (made,) = choice.message.tool_calls
    assert made.id == "call_9"
    assert answer.usage is not None and answer.usage.prompt_tokens == 5


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_fake_errors_reach_the_client_as_their_kind(
    fake_openai: FakeOpenAI, status: int, expected: type[openai.APIStatusError]
) -> None:
    fake_openai.script(Error(status, "scripted failure", type="test_error", code="scripted"))
    with _client(fake_openai.base_url) as client, pytest.raises(expected) as caught:
        client.chat.completions.create(model="gpt-test", messages=QUESTION)

    assert caught.value.status_code == status
    assert (caught.value.code, caught.value.type) == ("scripted", "test_error")
    assert "scripted failure" in caught.value.message


def test_fake_rate_limit_carries_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Error(429, "slow down", type="requests", code="rate_limit_exceeded", retry_after="20")
    )
    with _client(fake_openai.base_url) as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-test", messages=QUESTION, stream=True)

    assert caught.value.response.headers["retry-after"] == "20"
    assert caught.value.code == "rate_limit_exceeded"


def test_fake_retry_after_paces_the_clients_retry(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Error(429, "slow down", retry_after="0.05"), Stream(content=["ok"]))
    received: list[str] = []
    with _client(fake_openai.base_url, max_retries=1) as client:
        _read(client, received)

    assert "".join(received) == "ok"
    assert [r.headers["x-stainless-retry-count"] for r in fake_openai.requests] == ["0", "1"]


def test_fake_with_nothing_scripted_answers_500(fake_openai: FakeOpenAI) -> None:
    with (
        _client(fake_openai.base_url) as client,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        client.chat.completions.create(model="gpt-test", messages=QUESTION)

    assert "no scripted reply left for POST /v1/chat/completions" in caught.value.message


def test_fake_cut_stream_breaks_the_client_after_its_chunks(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(CutStream(Stream(content=["a", "b", "c"]), after=2))
    received: list[str] = []
    with _client(fake_openai.base_url) as client, pytest.raises(openai.APIConnectionError):
        _read(client, received)

    assert received == ["", "a"]
    assert fake_openai.disconnects == 0


def test_fake_malformed_chunk_fails_the_clients_parse(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(MalformedChunk(Stream(content=["a", "b"]), after=2))
    received: list[str] = []
    with _client(fake_openai.base_url) as client, pytest.raises(json.JSONDecodeError):
        _read(client, received)

    assert received == ["", "a"]


def test_fake_hanging_stream_times_the_client_out(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(HangingStream(Stream(content=["a", "b"]), after=2))
    received: list[str] = []
    with (
        _client(fake_openai.base_url, timeout=0.3) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        _read(client, received)

    assert received == ["", "a"]
    fake_openai.wait_disconnects(1)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reply",
    [
        HangingStream(Stream(content=["a", "b"]), after=2),
        Stream(content=[str(n) for n in range(100)], delay=0.02),
    ],
    ids=["hanging", "slow"],
)
async def test_fake_sees_an_async_client_cancel_mid_stream(
    fake_openai: FakeOpenAI, reply: HangingStream | Stream
) -> None:
    fake_openai.script(reply)
    received: list[str] = []
    async with _aclient(fake_openai.base_url) as client:
        with anyio.move_on_after(10) as scope:
            stream = await client.chat.completions.create(
                model="gpt-test", messages=QUESTION, stream=True
            )
            async with stream:
                async for chunk in stream:
                    received.append(chunk.choices[0].delta.content or "")
                    if len(received) == 2:
                        scope.cancel()

    assert scope.cancelled_caught
    assert received == (["", "a"] if isinstance(reply, HangingStream) else ["", "0"])
    await fake_openai.await_disconnects(1)
    assert fake_openai.disconnects == 1
