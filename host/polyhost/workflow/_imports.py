"""Importing handlers written as ``package.module:function``, and the event-loop choice."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["backend_options", "import_callable"]


def import_callable(reference: str, base_dir: str | None = None) -> Callable[..., Any]:
    """The callable ``reference`` names, with ``base_dir`` (a manifest's folder) on sys.path.

    Raises ValueError for a malformed reference, ImportError or AttributeError when it is not
    there, and TypeError when what it names is not callable.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a handler is written 'package.module:function', got {reference!r}")
    if base_dir and base_dir not in sys.path:
        sys.path.insert(0, base_dir)
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference} is not callable")
    found: Callable[..., Any] = target
    return found


def backend_options() -> dict[str, Any]:
    """anyio's asyncio backend options: uvloop when it is installed."""
    try:
        import uvloop  # noqa: F401, PLC0415 (optional)
    except ImportError:
        return {}
    return {"use_uvloop": True}
