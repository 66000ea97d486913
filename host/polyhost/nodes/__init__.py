"""The node types that ship with the host."""

from __future__ import annotations

from ..workflow._catalog import NodeType
from .control import CONTROL_NODE_TYPES
from .core import NODE_TYPES
from .llm import LLM_NODE_TYPES

__all__ = ["builtin_node_types"]


def builtin_node_types() -> list[NodeType]:
    """The built-in ``core.*`` and ``llm.*`` node types."""
    return [*NODE_TYPES, *CONTROL_NODE_TYPES, *LLM_NODE_TYPES]
