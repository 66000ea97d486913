"""What a runtime is to the host before it runs anything: a plug-in.

A runtime plug-in names its runtime, owns the options its node types carry (the keys of a
manifest's ``[[nodes]]`` entry beyond the common ones: ``handler``, ``module``, ...), checks a
node type when a workflow is compiled, contributes node types of its own (discovery) and builds
the adapter that runs nodes. The core names no runtime: the built-ins and the plug-ins installed
packages register under the ``polyhost.runtimes`` entry-point group are all found the same way
(``_registry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from .._limits import Limits

if TYPE_CHECKING:
    from ..workflow._catalog import Catalog, ManifestSections, NodeType
    from ._base import RuntimeAdapter

__all__ = ["Problem", "RuntimeOptions", "RuntimePlugin", "RuntimeSetup", "options_of"]

OptionsT = TypeVar("OptionsT", bound="RuntimeOptions")
# A finding of a runtime's check: (diagnostic code, message, field or None for `type`).
Problem = tuple[str, str, str | None]


class RuntimeOptions(BaseModel):
    """The node-type options of a runtime; a runtime with none keeps this empty model.

    A key a node type sets that its runtime's model lacks is an error naming the node type and
    the key (``module`` on a python node type, say).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class RuntimeSetup:
    """What the host hands a runtime's factory: its catalog and its settings."""

    catalog: Catalog
    limits: Limits
    home: Path  # the host's state folder; a runtime keeps its files in a folder of its own there
    allowed_roots: tuple[Path, ...]  # folders nodes may read and write files in
    max_output_bytes: int
    process_workers: int | None  # size of a process pool, None for the runtime's default
    cache: bool  # whether compiled artefacts may be kept under ``home`` between processes


class RuntimePlugin(ABC):
    """A runtime: its name, its options model, its checks, its node types, its adapter.

    Subclass it and register the class (or an instance) under the ``polyhost.runtimes``
    entry-point group; :meth:`create` is the factory of the adapter that runs the nodes.
    Every hook but ``create`` has a harmless default.
    """

    name: ClassVar[str] = ""
    options: ClassVar[type[RuntimeOptions]] = RuntimeOptions
    # The option a node type of this runtime must set (``module`` for wasm), if any.
    target: ClassVar[str | None] = None

    @abstractmethod
    def create(self, setup: RuntimeSetup) -> RuntimeAdapter:
        """The adapter that runs this runtime's nodes in the host described by ``setup``."""

    def check(self, node_type: NodeType, catalog: Catalog, limits: Limits) -> list[Problem]:
        """What is wrong with ``node_type`` before a run (its handler cannot be imported, its
        module is invalid); called by the compiler for every node of this runtime."""
        del node_type, catalog, limits
        return []

    def check_params(
        self, node_type: NodeType, params: dict[str, Any], limits: Limits
    ) -> list[Problem]:
        """What is wrong with a node's constant ``with`` values that its input schema cannot
        say; called after the schema found them valid."""
        del node_type, params, limits
        return []

    def check_manifest(self, node_type: NodeType, manifest: ManifestSections) -> str | None:
        """Why ``node_type`` does not fit the manifest declaring it (a sidecar it names is not
        declared there, say), or None."""
        del node_type, manifest
        return None

    def node_types(self) -> Iterable[NodeType]:
        """The node types this runtime brings with it (built-ins)."""
        return ()

    def attach(self, adapter: RuntimeAdapter, catalog: Catalog) -> None:
        """Called once the host built ``adapter``: discovery that needs it (asking services
        for their node types as manifests declare them) hooks into ``catalog`` here."""
        del adapter, catalog


def options_of(node_type: NodeType, model: type[OptionsT]) -> OptionsT:
    """The options of ``node_type`` as its runtime's ``model`` (the adapter's typed view)."""
    options = node_type.options
    if not isinstance(options, model):
        raise TypeError(f"node type {node_type.type} does not carry {model.__name__}")
    return options
