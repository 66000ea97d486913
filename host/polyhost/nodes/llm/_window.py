"""Keeping a conversation within ``max_context_tokens``: the token-aware sliding window.

The leading system messages always stay; then the newest messages that fit, newest first. A
tool round (an assistant message asking for tools and the tool messages that answer it) stays
or goes as one, since a server refuses a tool answer without its question and the reverse.

Tokens are counted by the server's own tokenizer when it offers one (llama.cpp's
``/extras/tokenize``, vLLM's ``/tokenize``), else estimated at 4 bytes of UTF-8 per token,
which over-counts English a little and so errs on the side of fitting.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MESSAGE_OVERHEAD", "Window", "estimate_tokens", "fit", "message_text"]

MESSAGE_OVERHEAD = 4  # tokens a chat template adds around each message (role, separators)

Counter = Callable[[Sequence[str]], Awaitable[list[int]]]


@dataclass(frozen=True, slots=True)
class Window:
    """What the window kept of a conversation."""

    messages: list[dict[str, Any]]
    tokens: int  # of the messages kept
    dropped: int  # messages left out
    dropped_tokens: int


def estimate_tokens(text: str) -> int:
    """A token count without a tokenizer: a token per 4 bytes of UTF-8, at least 1 if any."""
    size = len(text.encode("utf-8", "surrogatepass"))
    return (size + 3) // 4


def message_text(message: dict[str, Any]) -> str:
    """The text of a message a tokenizer should count: its content and any tool calls."""
    parts = [str(message.get("role", ""))]
    content = message.get("content")
    if isinstance(content, str):
        parts.append(content)
    elif content is not None:
        parts.append(json.dumps(content, ensure_ascii=False))
    if message.get("tool_calls"):
        parts.append(json.dumps(message["tool_calls"], ensure_ascii=False))
    return "\n".join(parts)


async def fit(messages: list[dict[str, Any]], budget: int, count: Counter) -> Window | None:
    """The newest messages that fit ``budget`` tokens, after the leading system messages;
    None when even those and the newest message (or tool round) do not fit."""
    texts = [message_text(m) for m in messages]
    costs = [n + MESSAGE_OVERHEAD for n in await count(texts)]
    head = 0
    while head < len(messages) and messages[head].get("role") == "system":
        head += 1
    used = sum(costs[:head])
    units = _units(messages, head)
    kept: list[tuple[int, int]] = []
    for start, end in reversed(units):
        cost = sum(costs[start:end])
        if used + cost > budget:
            break
        used += cost
        kept.append((start, end))
    if units and not kept:
        return None
    if not units and used > budget:
        return None
    kept_indexes = list(range(head)) + [i for s, e in reversed(kept) for i in range(s, e)]
    kept_set = set(kept_indexes)
    dropped = [i for i in range(len(messages)) if i not in kept_set]
    return Window(
        messages=[messages[i] for i in kept_indexes],
        tokens=used,
        dropped=len(dropped),
        dropped_tokens=sum(costs[i] for i in dropped),
    )


def _units(messages: list[dict[str, Any]], start: int) -> list[tuple[int, int]]:
    """Spans of messages that stay or go together: a tool round, or a single message."""
    units: list[tuple[int, int]] = []
    index = start
    while index < len(messages):
        end = index + 1
        if messages[index].get("role") == "assistant" and messages[index].get("tool_calls"):
            while end < len(messages) and messages[end].get("role") == "tool":
                end += 1
        units.append((index, end))
        index = end
    return units
