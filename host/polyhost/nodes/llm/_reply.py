"""Structured replies: the reply parsed as JSON and checked against ``response_format``."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from ..._errors import LlmBadRequestError, LlmError, LlmUnavailableError, PolyhostError
from ...compile._schema import schema_errors, validator_for

__all__ = [
    "check_reply",
    "refuses_json_schema",
    "remember_style",
    "repair_prompt",
    "response_format",
    "schema_style",
]

_styles: dict[str, str] = {}  # base URL -> the response_format style it takes

# A reply wrapped in one Markdown code fence, as small models often write JSON.
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def response_format(schema: dict[str, Any], style: str) -> dict[str, Any]:
    """The request's ``response_format`` in one of two styles: OpenAI's ``json_schema`` (OpenAI,
    vLLM, Ollama, LiteLLM), or ``json_object`` with the schema beside it, which llama.cpp's
    Python server takes instead. Servers that constrain their output turn either into a
    grammar."""
    if style == "json_object":
        return {"type": "json_object", "schema": schema}
    return {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": False},
    }


def schema_style(base_url: str) -> str:
    """The style a server was found to take, or ``auto`` when not known yet."""
    return _styles.get(base_url, "auto")


def remember_style(base_url: str, style: str) -> None:
    """Remember which style ``base_url`` takes, for the rest of the process."""
    if len(_styles) < 1024:
        _styles[base_url] = style


def refuses_json_schema(exc: LlmError) -> bool:
    """True when a server's refusal is about the ``json_schema`` style itself (llama.cpp's
    Python server answers ``Input should be 'text' or 'json_object'``, with a 500)."""
    if not isinstance(exc, LlmBadRequestError | LlmUnavailableError):
        return False
    return any(word in exc.message for word in ("json_object", "json_schema", "response_format"))


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
