"""The grpc runtime as a plug-in: its options, its manifest check, sidecar discovery."""

from __future__ import annotations

from typing import ClassVar

from ...workflow._catalog import Catalog, ManifestSections, NodeType
from .._base import RuntimeAdapter
from .._plugin import RuntimeOptions, RuntimePlugin, RuntimeSetup, options_of
from ._options import GrpcOptions
from ._runtime import GrpcRuntime

__all__ = ["PLUGIN", "GrpcPlugin"]


class GrpcPlugin(RuntimePlugin):
    """Node types served by sidecar processes over the NodeRuntime gRPC service."""

    name: ClassVar[str] = "grpc"
    options: ClassVar[type[RuntimeOptions]] = GrpcOptions
    target: ClassVar[str | None] = "sidecar"

    def create(self, setup: RuntimeSetup) -> RuntimeAdapter:
        return GrpcRuntime(setup.catalog, limits=setup.limits)

    def check_manifest(self, node_type: NodeType, manifest: ManifestSections) -> str | None:
        sidecar = options_of(node_type, GrpcOptions).sidecar
        if sidecar not in manifest.sidecars:
            return f"sidecar {sidecar!r} is not declared under [sidecars]"
        return None

    def attach(self, adapter: RuntimeAdapter, catalog: Catalog) -> None:
        """Each manifest's sidecars are asked for their node types (``Describe``) as it
        loads, and those already declared now."""
        if not isinstance(adapter, GrpcRuntime):
            return
        catalog.watch(lambda manifest: _discover(adapter, manifest))
        if catalog.sidecars:
            adapter.discover(dict(catalog.sidecars))


def _discover(adapter: GrpcRuntime, manifest: ManifestSections) -> None:
    if manifest.sidecars:
        adapter.discover(dict(manifest.sidecars))


PLUGIN = GrpcPlugin()
