"""The ``llm.chat`` handler: a conversation with a model, tool rounds and repairs included.

Each request to the model is one step (``max_steps`` bounds them): the reply streams as
``{delta, step}`` chunks; tool calls run the node types the workflow offered, concurrently,
each announced as a ``{tool_call}`` chunk and answered by a ``{tool_result}`` chunk; a reply
that breaks ``response_format`` is sent back with the problem, ``repair_rounds`` times at most.
Usage is summed over the steps.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio

from ..._errors import (
    LlmError,
    LlmInvalidReplyError,
    LlmMaxStepsError,
    NodeError,
    NodeParameterError,
)
from ...compile._tools import TOOL_CHOICE_KEYWORDS, tool_choice_problem
from ...runtimes._context import NodeContext, NodeTools, ToolSpec
from ...workflow._units import parse_duration
from ._client import client_for, endpoint
from ._reply import (
    check_reply,
    refuses_json_schema,
    remember_style,
    repair_prompt,
    response_format,
    schema_style,
)
from ._stream import ModelRound, stream_round
from ._tokens import TokenCounter
from ._window import MESSAGE_OVERHEAD, fit, message_text

__all__ = ["chat"]

_MAX_TOOL_TEXT = 100_000  # characters of a tool's output sent back to the model
_PREVIEW = 2_000  # characters of a tool's output shown in its chunk event
_RAW_IN_ERROR = 4_000  # characters of an invalid reply kept in the node's error message
_MAX_ARGUMENTS = 1_000_000  # characters of one tool call's arguments
_MAX_CALLS_PER_STEP = 16  # tool calls run concurrently in one step; more are refused
_PASSED_ON = ("temperature", "top_p", "max_tokens", "seed", "stop")


async def chat(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``llm.chat``: see the module's docstring and docs/llm.md."""
    return await _Conversation(params, ctx).run()


class _Conversation:
    def __init__(self, params: dict[str, Any], ctx: NodeContext) -> None:
        self.params = params
        self.ctx = ctx
        self.target = endpoint(params, ctx)
        self.client = client_for(self.target)
        self.messages = _opening(params, ctx.node_id)
        self.tools: NodeTools | None = ctx.tools if params.get("tools") else None
        self.schema: dict[str, Any] | None = params.get("response_format")
        self.request = self._request()
        self.budget: int | None = params.get("max_context_tokens")
        self.counter = TokenCounter(self.client, self.target.base_url, params["model"])
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self.estimated = False
        self.steps: list[dict[str, Any]] = []
        self.context: dict[str, Any] | None = None
        self.model = str(params["model"])
        self.tool_timeout = parse_duration(params.get("tool_timeout", 60))

    def _request(self) -> dict[str, Any]:
        params = self.params
        request: dict[str, Any] = {"model": params["model"]}
        request.update({k: params[k] for k in _PASSED_ON if k in params})
        if self.tools is not None and self.tools.specs:
            request["tools"] = [_function(spec) for spec in self.tools.specs]
            request["tool_choice"] = "none" if params.get("tool_choice") == "none" else "auto"
        return request

    def _first_choice(self) -> Any:
        """The first request's ``tool_choice``: ``required`` or a tool's name forces a call
        there; later requests are ``auto``, or the model could never answer in text."""
        choice = self.params.get("tool_choice", "auto")
        if self.tools is None or not self.tools.specs or choice in TOOL_CHOICE_KEYWORDS:
            return choice
        # Written out, the choice was checked when the workflow compiled; a template was not.
        problem = tool_choice_problem(choice, [spec.name for spec in self.tools.specs])
        if problem is not None:
            raise NodeParameterError(problem, node=self.ctx.node_id, field="with.tool_choice")
        return {"type": "function", "function": {"name": choice}}

    async def run(self) -> dict[str, Any]:
        max_steps = int(self.params.get("max_steps", 8))
        repairs = int(self.params.get("repair_rounds", 1))
        for step in range(1, max_steps + 1):
            reply = await self._ask(step)
            if reply.tool_calls and self.tools is not None:
                await self._run_tools(step, reply)
                continue
            if self.schema is None:
                return self._output(reply, None)
            value, problem = check_reply(reply.text, self.schema)
            if problem is None:
                return self._output(reply, value)
            if repairs == 0 or step == max_steps:
                raise LlmInvalidReplyError(
                    f"the reply does not match response_format: {problem}; the reply was: "
                    f"{_cut(reply.text, _RAW_IN_ERROR)}",
                    node=self.ctx.node_id,
                    field="with.response_format",
                    raw=reply.text,
                )
            repairs -= 1
            self.steps[-1]["problem"] = problem
            self.messages.append({"role": "assistant", "content": reply.text})
            self.messages.append({"role": "user", "content": repair_prompt(problem, self.schema)})
        raise LlmMaxStepsError(
            f"the model still asked for tools (or a repair) after max_steps = {max_steps} "
            "requests; raise max_steps or offer fewer tools",
            node=self.ctx.node_id,
            field="with.max_steps",
        )

    async def _ask(self, step: int) -> ModelRound:
        sent = await self._window()
        request = {**self.request, "messages": sent}
        if step == 1 and "tools" in request:
            request["tool_choice"] = self._first_choice()
        begin = time.perf_counter()
        if self.schema is None:
            reply = await stream_round(self.client, request, self.ctx, step, self.target)
        else:
            reply = await self._ask_structured(request, step)
        usage = reply.usage
        if usage is None:
            usage = await self._estimate(sent, reply)
        for key in self.usage:
            self.usage[key] += usage[key]
        if reply.model:
            self.model = reply.model
        self.steps.append(
            {
                "step": step,
                "kind": "model",
                "text": reply.text,
                "finish_reason": reply.finish_reason,
                "tool_calls": [
                    {"id": c["id"], "name": c["name"], "arguments": c["arguments"]}
                    for c in reply.tool_calls
                ],
                "usage": {**usage, "estimated": reply.usage is None},
                "duration_ms": round((time.perf_counter() - begin) * 1000, 3),
            }
        )
        return reply

    async def _ask_structured(self, request: dict[str, Any], step: int) -> ModelRound:
        """A request with the reply's schema, in the style the server takes (see _reply)."""
        assert self.schema is not None  # only called with a schema
        mode = self.params.get("response_format_mode", "auto")
        if mode == "auto":
            mode = schema_style(self.target.base_url)
        if mode != "auto":
            request["response_format"] = response_format(self.schema, mode)
            return await stream_round(self.client, request, self.ctx, step, self.target)
        # First structured request to this server: without the client's retries, so that a
        # server refusing OpenAI's json_schema style is asked again at once in llama.cpp's.
        request["response_format"] = response_format(self.schema, "json_schema")
        try:
            reply = await stream_round(
                self.client.with_options(max_retries=0), request, self.ctx, step, self.target
            )
        except LlmError as exc:
            if not refuses_json_schema(exc):
                raise
            remember_style(self.target.base_url, "json_object")
            request["response_format"] = response_format(self.schema, "json_object")
            return await stream_round(self.client, request, self.ctx, step, self.target)
        remember_style(self.target.base_url, "json_schema")
        return reply

    async def _window(self) -> list[dict[str, Any]]:
        if self.budget is None:
            return self.messages
        window = await fit(self.messages, self.budget, self.counter.count)
        if window is None:
            raise NodeParameterError(
                f"max_context_tokens = {self.budget} does not hold the system message and the "
                "newest message; raise it or shorten them",
                node=self.ctx.node_id,
                field="with.max_context_tokens",
            )
        if window.dropped:
            self.ctx.log(
                f"context: dropped the {window.dropped} oldest message(s) "
                f"({window.dropped_tokens} tokens) to fit max_context_tokens = {self.budget}",
                "info",
            )
        previous = self.context or {"dropped": 0, "dropped_tokens": 0}
        self.context = {
            "max_context_tokens": self.budget,
            "tokens": window.tokens,
            "dropped": max(previous["dropped"], window.dropped),
            "dropped_tokens": max(previous["dropped_tokens"], window.dropped_tokens),
            "counted_by": self.counter.counted_by,
        }
        return window.messages

    async def _estimate(self, sent: list[dict[str, Any]], reply: ModelRound) -> dict[str, int]:
        """Usage counted here when the server reports none (marked ``estimated``)."""
        self.estimated = True
        prompt = sum(await self.counter.count([message_text(m) for m in sent]))
        prompt += MESSAGE_OVERHEAD * len(sent)
        # Servers that report no usage (llama.cpp's) stream a token per chunk: counting the
        # chunks costs nothing, where asking the tokenizer would cost a request after the reply.
        completion = reply.pieces
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def _run_tools(self, step: int, reply: ModelRound) -> None:
        assert self.tools is not None  # only called with tools
        tools = self.tools
        calls = reply.tool_calls
        self.messages.append(
            {
                "role": "assistant",
                # Text, even empty: llama.cpp refuses a null content beside tool calls.
                "content": reply.text,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ],
            }
        )
        answers: list[str] = [""] * len(calls)
        records: list[dict[str, Any]] = [{} for _ in calls]
        specs = {spec.name: spec for spec in tools.specs}

        async def run_one(index: int, call: dict[str, str]) -> None:
            answers[index], records[index] = await self._run_tool(step, call, specs, tools)

        async with anyio.create_task_group() as tg:
            for index, call in enumerate(calls):
                if index < _MAX_CALLS_PER_STEP:
                    tg.start_soon(run_one, index, call)
                else:  # a model asking for hundreds of calls at once gets told, not obeyed
                    message = f"at most {_MAX_CALLS_PER_STEP} tool calls run per step"
                    error = {"code": "too_many_tool_calls", "message": message}
                    answers[index] = json.dumps({"error": error})
                    records[index] = {
                        "step": step,
                        "kind": "tool",
                        "id": call["id"],
                        "name": call["name"],
                        "error": error,
                    }
        for call, answer, record in zip(calls, answers, records, strict=True):
            self.steps.append(record)
            self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": answer})

    async def _run_tool(
        self, step: int, call: dict[str, str], specs: dict[str, ToolSpec], tools: NodeTools
    ) -> tuple[str, dict[str, Any]]:
        """Run one tool call; what the model is told, and the step's record."""
        name, call_id = call["name"], call["id"]
        spec = specs.get(name)
        record: dict[str, Any] = {
            "step": step,
            "kind": "tool",
            "id": call_id,
            "name": name,
            "node_type": spec.node_type if spec else None,
        }
        self.ctx.chunk({"tool_call": {"step": step, "id": call_id, "name": name}})
        begin = time.perf_counter()
        arguments: Any = None
        error: dict[str, Any] | None = None
        output: Any = None
        try:
            if len(call["arguments"]) > _MAX_ARGUMENTS:
                raise ValueError(f"the arguments are over {_MAX_ARGUMENTS} characters")
            arguments = json.loads(call["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments are not a JSON object")
        except (ValueError, RecursionError) as exc:
            arguments = None
            error = {"code": "invalid_arguments", "message": f"arguments are not valid: {exc}"}
        else:
            try:
                output = await tools.call(name, arguments, call_id, self.tool_timeout)
            except NodeError as exc:
                error = {"code": exc.code, "message": exc.message, "field": exc.field}
        record["arguments"] = arguments if arguments is not None else call["arguments"]
        record["duration_ms"] = round((time.perf_counter() - begin) * 1000, 3)
        if error is None:
            record["output"] = output
            answer = _cut(json.dumps(output, ensure_ascii=False), _MAX_TOOL_TEXT)
        else:
            record["error"] = error
            answer = json.dumps({"error": error}, ensure_ascii=False)
        event: dict[str, Any] = {"step": step, "id": call_id, "name": name}
        event.update({"error": error} if error else {"output": _cut(answer, _PREVIEW)})
        self.ctx.chunk({"tool_result": event})
        return answer, record

    def _output(self, reply: ModelRound, value: Any) -> dict[str, Any]:
        return {
            "text": reply.text,
            "json": value,
            "usage": {**self.usage, "estimated": self.estimated},
            "finish_reason": reply.finish_reason,
            "model": self.model,
            "steps": self.steps,
            "context": self.context,
        }


def _opening(params: dict[str, Any], node: str) -> list[dict[str, Any]]:
    """The conversation the node starts with: its system message, then messages or prompt."""
    messages: list[dict[str, Any]] = []
    if params.get("system"):
        messages.append({"role": "system", "content": params["system"]})
    if "messages" in params:
        messages.extend(dict(m) for m in params["messages"])
    elif "prompt" in params:
        messages.append({"role": "user", "content": params["prompt"]})
    else:
        raise NodeParameterError(
            "llm.chat needs `prompt` or `messages`", node=node, field="with.prompt"
        )
    return messages


def _function(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": dict(spec.parameters),
        },
    }


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"
