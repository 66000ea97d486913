"""A runtime of a third party's, in a package of its own: nodes that echo their ``with``.

Found by the host through the ``polyhost.runtimes`` entry point the tests register for it
(``echo = tests.runtimes.echo_runtime:EchoPlugin``), never imported by polyhost by name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from polyhost import Catalog, Limits, NodeContext, NodeError, NodeType
from polyhost.runtimes import (
    Problem,
    RuntimeAdapter,
    RuntimeOptions,
    RuntimePlugin,
    RuntimeSetup,
    options_of,
)


class EchoOptions(RuntimeOptions):
    """An echo node type's keys (top-level keys of its ``[[nodes]]`` entry)."""

    prefix: str = Field(description="put before every string the node echoes")
    shout: bool = False


class EchoRuntime:
    """The adapter: one attempt of a node returns its parameters, strings prefixed."""

    name = "echo"

    def __init__(self, setup: RuntimeSetup) -> None:
        self.max_output_bytes = setup.max_output_bytes
        self.closed = False

    async def execute(
        self, node_type: NodeType, params: dict[str, Any], ctx: NodeContext
    ) -> dict[str, Any] | None:
        options = options_of(node_type, EchoOptions)
        if params.get("fail"):
            raise NodeError("asked to fail", node=ctx.node_id, code="echo_failed", retryable=False)
        ctx.log(f"echoing {sorted(params)}")
        out: dict[str, Any] = dict(params)
        for key, value in params.items():
            if isinstance(value, str):
                text = options.prefix + value
                out[key] = text.upper() if options.shout else text
        return out

    async def aclose(self) -> None:
        self.closed = True


class EchoPlugin(RuntimePlugin):
    """The plug-in the entry point names."""

    name: ClassVar[str] = "echo"
    options: ClassVar[type[RuntimeOptions]] = EchoOptions
    target: ClassVar[str | None] = "prefix"

    def create(self, setup: RuntimeSetup) -> RuntimeAdapter:
        return EchoRuntime(setup)

    def check(self, node_type: NodeType, catalog: Catalog, limits: Limits) -> list[Problem]:
        prefix = options_of(node_type, EchoOptions).prefix
        if "{" in prefix:
            return [("invalid_value", f"the prefix {prefix!r} holds a brace", None)]
        return []

    def node_types(self) -> list[NodeType]:
        """One built-in node type, as a runtime may bring."""
        return [
            NodeType(type="echo.plain", runtime="echo", options=EchoOptions(prefix="> ")),
        ]
