"""The node types that ship with the host."""

from __future__ import annotations

from .._catalog import NodeType
from .core import NODE_TYPES

__all__ = ["builtin_node_types"]


def builtin_node_types() -> list[NodeType]:
    """The built-in ``core.*`` node types, all run by the python runtime."""
    return list(NODE_TYPES)
