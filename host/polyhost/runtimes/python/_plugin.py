"""The python runtime as a plug-in: its options, its load-time check, its adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from ..._errors import ManifestError
from ..._limits import Limits
from ...workflow._catalog import Catalog, NodeType
from ...workflow._diagnostics import DiagnosticCode
from ...workflow._imports import import_callable
from .._base import RuntimeAdapter
from .._plugin import Problem, RuntimeOptions, RuntimePlugin, RuntimeSetup, options_of

__all__ = ["PLUGIN", "PythonOptions", "PythonPlugin", "load_handler"]


class PythonOptions(RuntimeOptions):
    """A python node type's keys: the handler and where it runs."""

    handler: str | None = Field(None, description="module:function")
    isolation: Literal["inline", "process"] = Field(
        "inline", description="inline: in the host's process; process: in a worker process"
    )


def load_handler(catalog: Catalog, node_type: NodeType) -> Callable[..., Any]:
    """The callable behind a python node type, imported on first use.

    Raises ``ManifestError`` when the handler cannot be imported.
    """
    return catalog.cached_callable(node_type, lambda: _import_handler(node_type))


def _import_handler(node_type: NodeType) -> Callable[..., Any]:
    handler = options_of(node_type, PythonOptions).handler
    try:
        return import_callable(handler or "", node_type.base_dir)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"node type {node_type.type}: {exc}") from exc
    except ImportError as exc:
        raise ManifestError(
            f"node type {node_type.type}: cannot import the handler: {exc}"
        ) from exc
    except AttributeError as exc:
        raise ManifestError(
            f"node type {node_type.type}: {handler!r} does not exist: {exc}"
        ) from exc


class PythonPlugin(RuntimePlugin):
    """Python handlers: in the host's process, or in a pool of worker processes."""

    name: ClassVar[str] = "python"
    options: ClassVar[type[RuntimeOptions]] = PythonOptions

    def create(self, setup: RuntimeSetup) -> RuntimeAdapter:
        from ._runtime import PythonRuntime  # noqa: PLC0415 (the adapter imports this module)

        return PythonRuntime(setup.catalog, process_workers=setup.process_workers)

    def check(self, node_type: NodeType, catalog: Catalog, limits: Limits) -> list[Problem]:
        # An inline handler is imported now; a process one is imported by its worker.
        options = options_of(node_type, PythonOptions)
        if options.isolation != "inline" or node_type.control is not None:
            return []
        try:
            load_handler(catalog, node_type)
        except ManifestError as exc:
            return [(DiagnosticCode.HANDLER_NOT_FOUND, exc.message, None)]
        return []


PLUGIN = PythonPlugin()
