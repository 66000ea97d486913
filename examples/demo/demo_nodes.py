"""Python node handlers of the demo workflow."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel


class GreetParams(BaseModel):
    name: str
    greeting: str = "Hello"


async def greet(params: GreetParams, ctx: Any) -> dict[str, Any]:
    """An async handler whose params arrive as a pydantic model."""
    ctx.log(f"greeting {params.name}")
    return {"text": f"{params.greeting}, {params.name}!"}


def score(params: dict[str, Any]) -> dict[str, Any]:
    """CPU-bound work: runs in a worker process, so the event loop never waits on it."""
    values = [int(v) for v in params["values"]]
    total = 0
    for _ in range(20_000):
        total = sum(v * v for v in values) % 10_007
    return {"total": total, "count": len(values)}


def flaky(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A sync handler that fails its first attempt: the retry policy recovers it."""
    time.sleep(0.05)
    if ctx.attempt == 1:
        raise ConnectionError("the upstream service hiccuped")
    return {"attempt": ctx.attempt}
