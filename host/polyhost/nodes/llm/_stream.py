"""One request to the model, streamed: each text delta becomes a ``node.chunk`` as it arrives.

The HTTP response is closed whatever ends the stream (its end, an error, the node's cancel or
timeout), shielded from the cancel itself, so a cancelled node never leaves the server
generating for nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..._errors import LlmInvalidReplyError, LlmUnavailableError
from ...runtimes._context import NodeContext
from ._client import Endpoint, llm_errors

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["MAX_REPLY_CHARS", "ModelRound", "stream_round"]

# A server that streams without end (no max_tokens, or a broken one) is cut off here, so one
# node's reply cannot grow the host's memory without bound.
MAX_REPLY_CHARS = 4 * 1024 * 1024


@dataclass(slots=True)
class ModelRound:
    """What one streamed request gave."""

    text: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # id, name, arguments (JSON)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    model: str | None = None
    pieces: int = 0  # chunks that carried text or tool arguments: about one token each


async def stream_round(
    client: AsyncOpenAI,
    request: dict[str, Any],
    ctx: NodeContext,
    step: int,
    target: Endpoint,
) -> ModelRound:
    """Send ``request`` with streaming on; chunk each text delta as ``{delta, step}``."""
    result = ModelRound()
    parts: list[str] = []
    size = 0  # characters of text and tool arguments so far
    calls: dict[int, dict[str, Any]] = {}
    finished = False
    received = 0  # chunks of any kind
    with llm_errors(ctx.node_id, target):
        stream = await client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        try:
            async for chunk in stream:
                received += 1
                if chunk.model:
                    result.model = chunk.model
                if chunk.usage is not None:
                    result.usage = {
                        "prompt_tokens": chunk.usage.prompt_tokens or 0,
                        "completion_tokens": chunk.usage.completion_tokens or 0,
                        "total_tokens": chunk.usage.total_tokens or 0,
                    }
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta is not None and delta.content:
                        text = _valid_text(delta.content)
                        result.pieces += 1
                        size += len(text)
                        parts.append(text)
                        ctx.chunk({"delta": text, "step": step})
                    if delta is not None and delta.tool_calls:
                        for piece in delta.tool_calls:
                            result.pieces += 1
                            size += _add_call_piece(calls, piece)
                    if size > MAX_REPLY_CHARS:
                        raise LlmInvalidReplyError(
                            f"the reply from {target.base_url} is over {MAX_REPLY_CHARS:,} "
                            "characters; set max_tokens",
                            node=ctx.node_id,
                            field="with.max_tokens",
                        )
                    if choice.finish_reason is not None:
                        result.finish_reason = choice.finish_reason
                        finished = True
        finally:
            with anyio.CancelScope(shield=True):
                await stream.close()
    if not finished:
        raise LlmUnavailableError(_unfinished(target, received), node=ctx.node_id)
    result.text = "".join(parts)
    result.tool_calls = [
        {
            "id": call["id"] or f"call_{step}_{index}",
            "name": call["name"],
            "arguments": "".join(call["arguments"]),
        }
        for index, call in sorted(calls.items())
    ]
    return result


def _unfinished(target: Endpoint, received: int) -> str:
    """Why a stream that ended without a finish reason did: a server that fails after it has
    accepted a streamed request can only end the stream, so the cause is a guess."""
    if received:
        return f"the reply stream from {target.base_url} ended before the reply did"
    # llama.cpp's server answers a prompt longer than the model's context this way.
    return (
        f"the reply stream from {target.base_url} ended before any of the reply: the server "
        "failed on the request after accepting it (a prompt longer than the model's context "
        "does this; its log says why, and max_context_tokens keeps the prompt within a budget)"
    )


def _valid_text(text: str) -> str:
    """``text`` with lone surrogates (a JSON escape no UTF-8 can hold) as U+FFFD: a server's bad
    escape must not make the whole reply unstorable."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def _add_call_piece(calls: dict[int, dict[str, Any]], piece: Any) -> int:
    """A tool call arrives in pieces: its id and name once, its arguments in fragments; returns
    the characters of arguments the piece added."""
    call = calls.setdefault(piece.index or 0, {"id": "", "name": "", "arguments": []})
    # OpenAI sends the id and name in the first piece only; llama.cpp repeats them in every one.
    if piece.id and not call["id"]:
        call["id"] = piece.id
    function = piece.function
    if function is not None:
        if function.name and not call["name"]:
            call["name"] = function.name
        if function.arguments:
            call["arguments"].append(_valid_text(function.arguments))
            return len(function.arguments)
    return 0
