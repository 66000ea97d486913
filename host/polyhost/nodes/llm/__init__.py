"""``llm.chat``: a chat completion from any OpenAI-compatible server, streamed into the run.

The handler is in ``_chat.py``; this module only declares the node type, so that a host that
never runs an LLM node never imports the ``openai`` client.
"""

from __future__ import annotations

from typing import Any

from ...runtimes.python import PythonOptions
from ...workflow._catalog import NodeType

__all__ = ["LLM_NODE_TYPES"]

_DURATION = {
    "type": ["number", "string"],
    "minimum": 0,
    "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$",
    "description": "seconds, or a string such as 250ms, 10s, 5m",
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["role"],
    "additionalProperties": False,
}
_TOOL = {
    "oneOf": [
        {"type": "string", "description": "a node type name"},
        {
            "type": "object",
            "properties": {
                "type": {"type": "string", "description": "the node type"},
                "name": {"type": "string", "description": "the function name the model sees"},
                "description": {"type": "string"},
                "with": {"type": "object", "description": "parameters fixed by the workflow"},
            },
            "required": ["type"],
            "additionalProperties": False,
        },
    ]
}
_USAGE = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "estimated": {"type": "boolean"},
    },
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
}

CHAT_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "minLength": 1, "description": "the model the server runs"},
        "prompt": {"type": "string", "description": "the user message"},
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
        "system": {"type": "string", "description": "the system message, sent first"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "stop": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
            ]
        },
        "response_format": {
            "type": "object",
            "description": "a JSON Schema the reply must match; the reply is parsed into `json`",
        },
        "response_format_mode": {
            "enum": ["auto", "json_schema", "json_object"],
            "default": "auto",
            "description": "how the schema is sent: OpenAI's json_schema, llama.cpp's "
            "json_object with a schema, or auto (json_schema, else json_object)",
        },
        "repair_rounds": {
            "type": "integer",
            "minimum": 0,
            "maximum": 5,
            "default": 1,
            "description": "times a reply that breaks response_format is sent back for repair",
        },
        "tools": {"type": "array", "items": _TOOL, "description": "node types offered as tools"},
        "tool_choice": {
            "type": "string",
            "minLength": 1,
            "default": "auto",
            "description": "auto, none, required, or a tool's name: the first request must "
            "call it (later ones are auto)",
        },
        "max_steps": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 8,
            "description": "most requests to the model in one attempt (each tool round is one)",
        },
        "tool_timeout": {**_DURATION, "default": 60},
        "max_context_tokens": {
            "type": "integer",
            "minimum": 16,
            "description": "keep the system message and the newest messages that fit",
        },
        "base_url": {"type": "string", "pattern": "^https?://", "description": "server URL"},
        "api_key_env": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "description": "environment variable holding the key (one the host allows)",
        },
        "max_retries": {
            "type": "integer",
            "minimum": 0,
            "maximum": 10,
            "default": 2,
            "description": "retries of a 429, 5xx or connection failure within one attempt",
        },
    },
    "required": ["model"],
    "not": {"required": ["prompt", "messages"]},
    "additionalProperties": False,
}

CHAT_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "json": {"description": "the reply parsed, when response_format is set; else null"},
        "usage": _USAGE,
        "finish_reason": {"type": ["string", "null"]},
        "model": {"type": "string"},
        "steps": {"type": "array", "items": {"type": "object"}},
        "context": {
            "type": ["object", "null"],
            "description": "what max_context_tokens dropped: messages, tokens, counted_by",
        },
    },
    "required": ["text", "json", "usage", "finish_reason", "model", "steps"],
}

LLM_NODE_TYPES: tuple[NodeType, ...] = (
    NodeType(
        type="llm.chat",
        runtime="python",
        options=PythonOptions(handler="polyhost.nodes.llm._chat:chat"),
        description="Asks a model on an OpenAI-compatible server; the reply streams as chunks, "
        "tools are node types of any runtime, response_format a JSON Schema the reply matches",
        input_schema=CHAT_INPUT,
        output_schema=CHAT_OUTPUT,
        tools_param="tools",
        tool_choice_param="tool_choice",
    ),
)
