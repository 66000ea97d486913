"""The native runtime as a plug-in: its options, its checks, its built-in node types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field

from ..._errors import ManifestError
from ..._limits import Limits
from ...plan._bridge import check_native_node, native_node_specs
from ...workflow._catalog import Catalog, NodeType
from ...workflow._diagnostics import DiagnosticCode
from ...workflow._imports import import_callable
from .._base import RuntimeAdapter
from .._plugin import Problem, RuntimeOptions, RuntimePlugin, RuntimeSetup, options_of

__all__ = ["PLUGIN", "NativeOptions", "NativePlugin", "load_module_handler"]


class NativeOptions(RuntimeOptions):
    """A native node type's keys: the node's name, and the module of an out-of-tree one."""

    handler: str = Field(description="the registry's node name, or the function in `module`")
    module: str | None = Field(
        None, description="an importable extension module holding `handler` (out-of-tree)"
    )


def load_module_handler(catalog: Catalog, node_type: NodeType) -> Callable[..., Any]:
    """The callable ``handler`` in ``module`` (out-of-tree native nodes), imported once.

    Raises ``ManifestError`` when it cannot be imported.
    """
    options = options_of(node_type, NativeOptions)
    reference = f"{options.module}:{options.handler}"

    def load() -> Callable[..., Any]:
        try:
            return import_callable(reference, node_type.base_dir)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            raise ManifestError(
                f"node type {node_type.type}: cannot load {reference}: {exc}"
            ) from exc

    return catalog.cached_callable(node_type, load)


class NativePlugin(RuntimePlugin):
    """Rust node functions: the extension's registry, and extension modules of one's own."""

    name: ClassVar[str] = "native"
    options: ClassVar[type[RuntimeOptions]] = NativeOptions
    target: ClassVar[str | None] = "handler"

    def create(self, setup: RuntimeSetup) -> RuntimeAdapter:
        from ._runtime import NativeRuntime  # noqa: PLC0415 (the adapter imports this module)

        return NativeRuntime(
            setup.catalog, setup.allowed_roots, setup.limits, setup.max_output_bytes
        )

    def check(self, node_type: NodeType, catalog: Catalog, limits: Limits) -> list[Problem]:
        if options_of(node_type, NativeOptions).module is None:
            return []
        try:
            load_module_handler(catalog, node_type)
        except ManifestError as exc:
            return [(DiagnosticCode.HANDLER_NOT_FOUND, exc.message, None)]
        return []

    def check_params(
        self, node_type: NodeType, params: dict[str, Any], limits: Limits
    ) -> list[Problem]:
        # What a built-in node checks itself (a `where`'s syntax and nesting).
        options = options_of(node_type, NativeOptions)
        if options.module is not None or not options.handler:
            return []
        from ._runtime import native_limits  # noqa: PLC0415 (the adapter imports this module)

        return check_native_node(options.handler, params, native_limits(limits))

    def node_types(self) -> list[NodeType]:
        """The node types of the extension's registry."""
        return [
            NodeType(
                type=spec["name"],
                runtime="native",
                options=NativeOptions(handler=spec["name"]),
                description=spec["description"],
                input_schema=spec["input_schema"],
                output_schema=spec["output_schema"],
            )
            for spec in native_node_specs()
            if not str(spec["name"]).startswith("debug.")
        ]


PLUGIN = NativePlugin()
