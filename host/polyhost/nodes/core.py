"""The core node types (spec section 4) and their python handlers.

``core.http`` lives in ``_http.py`` so that httpx is imported only by hosts that run it.
``core.loop``, ``core.parallel`` and ``core.approval`` are in ``control.py``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import anyio

from .._codes import MAX_CODE_CHARS, NO_CONTROL_CHARS, check_node_error
from .._errors import NodeError, NodeParameterError
from ..runtimes._context import NodeContext
from ..runtimes._pause import PauseRequested
from ..runtimes.python import PythonOptions
from ..workflow._catalog import NodeType
from ..workflow._units import parse_duration

__all__ = ["NODE_TYPES", "condition", "fail", "log", "switch", "transform", "wait"]

_ANY: dict[str, Any] = {}
_DURATION = {
    "type": ["number", "string"],
    "minimum": 0,
    "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$",
    "description": "seconds, or a string such as 250ms, 10s, 5m, 1h",
}
_LOG_LEVELS = ("debug", "info", "warning", "error")
# Waits at least this long pause the run (when it has a store) instead of sleeping in the host.
DURABLE_WAIT_SECONDS = 60.0


def transform(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.transform``: output ``value`` as resolved, to reshape data between nodes."""
    return {"value": params.get("value")}


def condition(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.condition``: the engine evaluates ``if``; settle on port ``true`` or ``false``."""
    result = params.get("if")
    if not isinstance(result, bool):
        raise NodeError(
            f"`if` must evaluate to a bool, got {_json_type(result)}",
            node=ctx.node_id,
            code="invalid_condition",
            field="with.if",
            retryable=False,
        )
    return {"result": result}


def switch(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.switch``: settle on the port of the case equal to ``value``, else ``default``.

    ``value`` is compared as text, the way a template writes it: a string as it is, anything else
    as JSON (``42``, ``3.5``, ``true``, ``null``), so ``42`` matches the case ``"42"`` and ``true``
    matches ``"true"``.
    """
    value = params.get("value")
    text = _as_text(value)
    cases = [str(case) for case in params.get("cases", [])]
    return {"value": value, "case": text if text in cases else "default"}


async def wait(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.wait``: sleep for ``duration`` or until ``until``; ``waited`` is the planned delay.

    A naive ``until`` (no offset) is read as UTC; a time in the past waits 0 seconds.
    """
    if ("duration" in params) == ("until" in params):
        raise NodeParameterError(
            "core.wait takes exactly one of `duration` and `until`", node=ctx.node_id, field="with"
        )
    if "duration" in params:
        try:
            seconds = parse_duration(params["duration"])
        except (TypeError, ValueError) as exc:
            raise NodeParameterError(str(exc), node=ctx.node_id, field="with.duration") from None
    else:
        seconds = max(0.0, (_parse_time(params["until"], ctx) - datetime.now(UTC)).total_seconds())
    if ctx.durable and seconds >= DURABLE_WAIT_SECONDS:
        # A long wait becomes a durable timer: the run pauses and holds no process meanwhile.
        raise PauseRequested("timer", wake_at=time.time() + seconds, detail={"seconds": seconds})
    await anyio.sleep(seconds)
    return {"waited": seconds}


def log(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.log``: write ``message`` to the run's log at ``level``; non-strings as JSON."""
    message = _as_text(params.get("message"))
    level = params.get("level", "info")
    if level not in _LOG_LEVELS:
        raise NodeParameterError(
            f"level must be one of {', '.join(_LOG_LEVELS)}, got {level!r}",
            node=ctx.node_id,
            field="with.level",
        )
    ctx.log(message, level)
    return {"message": message}


def fail(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """``core.fail``: always fail, with ``message`` and ``code``; never retried."""
    message = _as_text(params.get("message", "failed by core.fail"))
    error = NodeError(message, node=ctx.node_id, code=params.get("code", "fail"), retryable=False)
    raise check_node_error(error, "fail")


def _as_text(value: Any) -> str:
    """A value as a template inside text writes it: a string as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _json_type(value: Any) -> str:
    names = {bool: "a bool", int: "a number", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _parse_time(value: Any, ctx: NodeContext) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise NodeParameterError(
            f"`until` must be an ISO 8601 time such as 2030-01-31T12:00:00Z, got {value!r}",
            node=ctx.node_id,
            field="with.until",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _object(
    properties: dict[str, Any],
    required: tuple[str, ...] = (),
    not_together: tuple[str, ...] = (),
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    if not_together:
        # Written as "not all of these" rather than oneOf, so that the compiler, which checks
        # template-free values only, never asks for a key whose value is still a template.
        schema["not"] = {"required": list(not_together)}
    return schema


def _python(type_name: str, handler: str, description: str, **fields: Any) -> NodeType:
    return NodeType(
        type=type_name,
        runtime="python",
        options=PythonOptions(handler=f"polyhost.nodes.{handler}"),
        description=description,
        **fields,
    )


_HTTP_INPUT = _object(
    {
        "method": {
            "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            "default": "GET",
        },
        "url": {"type": "string", "minLength": 1, "description": "http:// or https:// URL"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "params": {
            "type": "object",
            "description": "query parameters; a list value repeats the parameter",
            "additionalProperties": {
                "type": ["string", "number", "boolean", "null", "array"],
                "items": {"type": ["string", "number", "boolean", "null"]},
            },
        },
        "json": {"description": "a request body sent as JSON"},
        "body": {"type": "string", "description": "a request body sent as text"},
        "timeout": {
            **_DURATION,
            "default": "30s",
            "description": "the longest wait to connect or for the next part of the response; "
            "the node's own `timeout` bounds the whole request",
        },
        "allow_status": {
            "type": "array",
            "items": {"type": "integer", "minimum": 100, "maximum": 599},
            "description": "statuses outside 2xx that do not fail the node",
        },
        "follow_redirects": {"type": "boolean", "default": True},
    },
    ("url",),
    not_together=("json", "body"),
)

NODE_TYPES: tuple[NodeType, ...] = (
    _python(
        "core.transform",
        "core:transform",
        "Outputs `value` as its templates resolve, to reshape data between nodes.",
        input_schema=_object(
            {"value": {"description": "any value; templates resolved"}}, ("value",)
        ),
        output_schema=_object({"value": _ANY}, ("value",)),
    ),
    _python(
        "core.condition",
        "core:condition",
        "Evaluates the CEL expression `if` and continues on port `true` or `false`.",
        input_schema=_object(
            {"if": {"description": "a CEL expression that evaluates to a bool"}}, ("if",)
        ),
        output_schema=_object({"result": {"type": "boolean"}}, ("result",)),
        ports=("true", "false"),
        port_field="result",
        expression_params=("if",),
    ),
    _python(
        "core.switch",
        "core:switch",
        "Continues on the port named by the case equal to `value` (compared as text), "
        "else on `default`.",
        input_schema=_object(
            {
                "value": {"description": "the value to match; non-strings compare as JSON text"},
                "cases": {
                    "type": "array",
                    "items": {"type": "string", "not": {"enum": ["default", "error"]}},
                    "uniqueItems": True,
                    "description": "each case is also a port; `default` and `error` are taken",
                },
            },
            ("value", "cases"),
        ),
        output_schema=_object({"value": _ANY, "case": {"type": "string"}}, ("value", "case")),
        ports=("default",),
        ports_param="cases",
        port_field="case",
    ),
    _python(
        "core.http",
        "_http:http",
        "Sends an HTTP request; a status outside 2xx and `allow_status` fails the node.",
        input_schema=_HTTP_INPUT,
        output_schema=_object(
            {
                "status": {"type": "integer"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "json": {"description": "the parsed body when the response is JSON, else null"},
                "text": {"type": "string"},
            },
            ("status", "headers", "json", "text"),
        ),
    ),
    _python(
        "core.wait",
        "core:wait",
        "Waits for `duration`, or until the ISO 8601 time `until` (UTC when it has no offset).",
        input_schema=_object(
            {
                "duration": _DURATION,
                "until": {"type": "string", "description": "ISO 8601, e.g. 2030-01-31T12:00:00Z"},
            },
            not_together=("duration", "until"),
        ),
        output_schema=_object({"waited": {"type": "number"}}, ("waited",)),
    ),
    _python(
        "core.log",
        "core:log",
        "Writes `message` to the run's log at `level`.",
        input_schema=_object(
            {
                "message": {"description": "text; other values are written as JSON"},
                "level": {"enum": list(_LOG_LEVELS), "default": "info"},
            },
            ("message",),
        ),
        output_schema=_object({"message": {"type": "string"}}, ("message",)),
    ),
    _python(
        "core.fail",
        "core:fail",
        "Always fails with `message` and `code`; the failure is not retried.",
        input_schema=_object(
            {
                "message": {"type": "string", "default": "failed by core.fail"},
                "code": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_CODE_CHARS,
                    "pattern": NO_CONTROL_CHARS,
                    "default": "fail",
                },
            }
        ),
        output_schema=_object({}),
    ),
)
