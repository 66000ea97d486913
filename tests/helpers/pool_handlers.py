"""Handlers for the process pool tests; workers import them with this folder on sys.path."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel

from polyhost._errors import NodeError
from polyhost.runtimes._context import NodeContext


def double(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    ctx.log("doubling", "info", x=params["x"])
    ctx.chunk({"partial": True})
    return {"value": params["x"] * 2, "pid": os.getpid(), "attempt": ctx.attempt}


async def async_double(params: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"value": params["x"] * 2}


class Numbers(BaseModel):
    x: int


class Total(BaseModel):
    total: int


def typed(params: Numbers) -> Total:
    return Total(total=params.x + 1)


def pid(params: dict[str, Any]) -> dict[str, Any]:
    return {"pid": os.getpid()}


def nothing(params: dict[str, Any]) -> None:
    return None


def boom(params: dict[str, Any]) -> dict[str, Any]:
    raise ValueError("no good")


def refuse(params: dict[str, Any]) -> dict[str, Any]:
    raise NodeError("refused", code="refused", retryable=False)


def exit_hard(params: dict[str, Any]) -> dict[str, Any]:
    os._exit(3)


def sleep_long(params: dict[str, Any]) -> dict[str, Any]:
    time.sleep(60)
    return {}


def unpicklable(params: dict[str, Any]) -> dict[str, Any]:
    return {"callback": lambda: None}


def not_a_dict(params: dict[str, Any]) -> list[int]:
    return [1, 2]


def spin(params: dict[str, Any]) -> dict[str, Any]:
    """CPU-bound forever: only killing the worker stops it."""
    while True:
        _ = sum(range(1000))
        if params.get("never"):
            return {"pid": os.getpid()}


def announce_and_sleep(params: dict[str, Any]) -> dict[str, Any]:
    """Writes its pid to params.path, then sleeps: a worker busy when its host is killed."""
    with open(params["path"], "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)
    return {}


def refuse_with(params: dict[str, Any]) -> dict[str, Any]:
    raise NodeError("refused", code=params["code"], field=params.get("field"), retryable=False)
