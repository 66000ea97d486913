"""Counting tokens with the server's tokenizer when it offers one, else an estimate.

Which tokenizer endpoint a server has (llama.cpp's ``/extras/tokenize``, vLLM's ``/tokenize``,
or none: OpenAI's API has none) is found once per server and remembered for the process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._window import estimate_tokens

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["TokenCounter"]

# base URL -> (tokenizer URL, its style), or None once none was found.
_found: dict[str, tuple[str, str] | None] = {}
# (base URL, model, text) -> tokens, as the server counted them. System messages and the start
# of a conversation come back in every request and every run: each is asked for once.
_counted: OrderedDict[tuple[str, str, str], int] = OrderedDict()
_MAX_CACHED = 4096


class TokenCounter:
    """Counts the tokens of texts for one node."""

    def __init__(self, client: AsyncOpenAI, base_url: str, model: str) -> None:
        self._client = client
        self._base_url = base_url
        self._model = model
        self.counted_by = "estimate"

    async def count(self, texts: Sequence[str]) -> list[int]:
        """The token count of each text."""
        return [await self._count_one(text) for text in texts]

    async def _count_one(self, text: str) -> int:
        key = (self._base_url, self._model, text)
        found = _counted.get(key)
        if found is not None:
            _counted.move_to_end(key)
            self.counted_by = "server"
            return found
        if self._base_url not in _found:
            _found[self._base_url] = await self._probe()
        tokenizer = _found[self._base_url]
        if tokenizer is not None:
            counted = await self._ask(tokenizer, text)
            if counted is not None:
                self.counted_by = "server"
                _counted[key] = counted
                if len(_counted) > _MAX_CACHED:
                    _counted.popitem(last=False)
                return counted
        return estimate_tokens(text)

    async def _probe(self) -> tuple[str, str] | None:
        root = self._base_url.removesuffix("/v1")
        for url, style in ((f"{root}/extras/tokenize", "llama.cpp"), (f"{root}/tokenize", "vllm")):
            if await self._ask((url, style), "probe") is not None:
                return url, style
        return None

    async def _ask(self, tokenizer: tuple[str, str], text: str) -> int | None:
        import openai  # noqa: PLC0415

        url, style = tokenizer
        body: dict[str, Any] = (
            {"input": text} if style == "llama.cpp" else {"model": self._model, "prompt": text}
        )
        try:
            answer = await self._client.with_options(max_retries=0, timeout=10.0).post(
                url, body=body, cast_to=object
            )
        except (openai.OpenAIError, ValueError):
            return None
        if isinstance(answer, dict):
            if isinstance(answer.get("count"), int):
                return int(answer["count"])
            if isinstance(answer.get("tokens"), list):
                return len(answer["tokens"])
        return None
