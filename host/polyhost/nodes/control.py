"""Node types that shape the run itself: loops, parallel branches and approvals."""

from __future__ import annotations

from typing import Any

from ..runtimes._context import NodeContext
from ..runtimes._pause import PauseRequested
from ..runtimes.python import PythonOptions
from ..workflow._catalog import NodeType

__all__ = ["CONTROL_NODE_TYPES", "approval"]

_CEL = {"type": "string", "description": "a CEL expression; `loop` is in scope"}
_ITERATION = {
    "count": {"type": ["integer", "string"], "minimum": 0, "description": "how many iterations"},
    "over": {"type": ["array", "string"], "description": "a list: one iteration per item"},
}


def approval(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.approval``: pause the run until a person resumes it with input.

    The engine validates the resume input against ``schema`` and makes it this node's output; the
    handler itself only ever asks for the pause.
    """
    raise PauseRequested(
        "approval", prompt=params.get("prompt"), schema=params.get("schema") or {"type": "object"}
    )


CONTROL_NODE_TYPES: tuple[NodeType, ...] = (
    NodeType(
        type="core.loop",
        runtime="python",
        control="loop",
        description="Run the body once per iteration, one after another: count, over, "
        "while or do_while, always capped by max_iterations",
        input_schema={
            "type": "object",
            "properties": {
                **_ITERATION,
                "while": _CEL,
                "do_while": _CEL,
                "max_iterations": {"type": "integer", "minimum": 1, "default": 10_000},
            },
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"results": {"type": "array"}}},
    ),
    NodeType(
        type="core.parallel",
        runtime="python",
        control="parallel",
        description="Run the body once per branch, concurrently up to `concurrency`",
        input_schema={
            "type": "object",
            "properties": {
                **_ITERATION,
                "concurrency": {"type": "integer", "minimum": 1, "default": 8},
            },
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": {"results": {"type": "array"}}},
    ),
    NodeType(
        type="core.approval",
        runtime="python",
        options=PythonOptions(handler="polyhost.nodes.control:approval"),
        description="Pause the run until a person resumes it; the resume input is the output",
        input_schema={
            "type": "object",
            "properties": {
                "prompt": {"type": "string"},
                "schema": {"type": "object", "description": "JSON Schema of the resume input"},
            },
            "additionalProperties": False,
        },
        output_schema={"type": "object", "description": "the input the run was resumed with"},
    ),
)
