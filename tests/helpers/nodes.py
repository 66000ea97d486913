"""Python node types used by the tests, registered on a catalog with the core types."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import anyio

from polyhost import Catalog, NodeContext, NodeError

CALLS: Counter[str] = Counter()


def build_catalog() -> Catalog:
    """The built-in catalog plus the test node types below."""
    catalog = Catalog.with_builtins()
    CALLS.clear()

    @catalog.node("test.echo", input_schema={"type": "object"})
    async def echo(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        CALLS[ctx.node_id] += 1
        return dict(params)

    @catalog.node("test.sync_echo")
    def sync_echo(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        CALLS[ctx.node_id] += 1
        return {**params, "attempt": ctx.attempt, "key": ctx.idempotency_key}

    @catalog.node("test.flaky")
    async def flaky(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        CALLS[ctx.node_id] += 1
        if ctx.attempt < int(params.get("succeed_on", 2)):
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return {"attempt": ctx.attempt}

    @catalog.node("test.sleep")
    async def sleep(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        CALLS[ctx.node_id] += 1
        await anyio.sleep(float(params.get("seconds", 10)))
        return {"slept": params.get("seconds", 10)}

    @catalog.node("test.busy")
    def busy(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        # Sync work that checks ctx.cancelled between steps, as long handlers should.
        deadline = time.monotonic() + float(params.get("seconds", 5))
        while time.monotonic() < deadline and not ctx.cancelled:
            time.sleep(0.01)
        return {"cancelled": ctx.cancelled}

    @catalog.node("test.log")
    def log(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        ctx.log("from a thread", "info", detail=params.get("detail"))
        ctx.chunk({"part": 1})
        return {}

    @catalog.node("test.bad_output")
    async def bad_output(params: dict[str, Any]) -> Any:
        kind = params.get("kind")
        if kind == "set":
            return {"value": {1, 2}}
        if kind == "big":
            return {"blob": "x" * int(params.get("size", 100))}
        return [1, 2, 3]

    @catalog.node("test.raise_polyhost")
    async def raise_polyhost(params: dict[str, Any]) -> dict[str, Any]:
        raise NodeError("permanent", code="permanent", retryable=False)

    @catalog.node("test.route", ports=("left", "right"), port_field="side")
    async def route(params: dict[str, Any]) -> dict[str, Any]:
        return {"side": params["side"]}

    return catalog
