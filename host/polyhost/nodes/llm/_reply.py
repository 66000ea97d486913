"""Structured replies: the reply parsed as JSON and checked against ``response_format``."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from ..._errors import PolyhostError
from ...compile._schema import schema_errors, validator_for

__all__ = ["check_reply", "repair_prompt", "response_format"]

# A reply wrapped in one Markdown code fence, as small models often write JSON.
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` of the request: OpenAI's JSON Schema mode, which servers that
    constrain their output (llama.cpp, vLLM) turn into a grammar."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": False},
    }


def check_reply(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """The reply parsed, and what is wrong with it (None when it matches ``schema``)."""
    fenced = _FENCE.match(text)
    source = fenced.group(1) if fenced else text
    try:
        value = json.loads(source)
    except ValueError as exc:
        return None, f"the reply is not JSON ({exc})"
    try:
        errors = schema_errors(validator_for(schema), value)
    except PolyhostError as exc:
        return None, exc.message
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return value, None
    where = "/".join(str(p) for p in error.absolute_path)
    return value, f"{error.message}" + (f" (at /{where})" if where else "")


def repair_prompt(problem: str, schema: dict[str, Any]) -> str:
    """What the model is told when its reply does not match."""
    return (
        f"Your reply does not match the required JSON Schema: {problem}. "
        "Reply again with only a JSON value that matches this schema, and nothing else:\n"
        + json.dumps(schema, ensure_ascii=False)
    )
