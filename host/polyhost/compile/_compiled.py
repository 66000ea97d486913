"""The compiled plan: what the checker hands the engine, immutable once built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..plan._bridge import Plan
from ..workflow._catalog import NodeType
from ..workflow._diagnostics import Diagnostic
from ..workflow._model import RetryPolicy, Workflow
from ._expressions import Expression, Template
from ._inputs import InputsSchema
from ._tools import ToolBinding

__all__ = ["ERROR_PORT", "CompiledGraph", "CompiledNode", "CompiledWorkflow"]

# The port an edge leaves from to route a node's error.
ERROR_PORT = "error"


@dataclass(frozen=True, slots=True)
class CompiledNode:
    """A node ready to run: its type, parsed templates and policies."""

    id: str
    index: int
    type: NodeType
    params: Template
    expression_params: Mapping[str, Expression]
    when: Expression | None
    retry: RetryPolicy
    timeout: float | None
    on_error: str
    has_error_edge: bool
    name: str | None = None
    body: CompiledGraph | None = None
    # core.loop's `while` / `do_while`, evaluated per iteration with `loop` in scope.
    conditions: Mapping[str, Expression] = field(default_factory=dict)
    # The node types it may run as tools (its type's `tools_param`), resolved from the catalog.
    tools: tuple[ToolBinding, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledGraph:
    """The nodes and plan of one DAG: a workflow, or the body of a loop or parallel node."""

    nodes: tuple[CompiledNode, ...]
    index: Mapping[str, int]
    plan: Plan
    outputs: Mapping[str, Template] | None
    leaves: tuple[str, ...]
    # Per node: the nodes of this graph that read its output (templates, `when`, bodies).
    readers: tuple[frozenset[int], ...] = ()
    # Nodes whose output the graph's result needs (its outputs, or its leaves).
    kept: frozenset[str] = frozenset()
    scope_var: str | None = None  # "loop" or "parallel" inside a body

    def node(self, node_id: str) -> CompiledNode:
        """The compiled node called ``node_id``."""
        return self.nodes[self.index[node_id]]


@dataclass(frozen=True, slots=True)
class CompiledWorkflow:
    """An immutable, validated plan of one workflow."""

    workflow: Workflow
    workflow_id: str
    graph: CompiledGraph
    inputs: InputsSchema
    warnings: tuple[Diagnostic, ...] = field(default=())
    # The manifests its node types came from, recorded with each run so that a rerun or a
    # resume in another process loads them again (the host sets them; not part of the plan).
    manifests: tuple[str, ...] = field(default=())
    # The document as each run records it, made on first use: dumping a large workflow once
    # per run costs more than some of its runs.
    _recorded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def recorded_document(self) -> dict[str, Any]:
        """The document as JSON values, the way runs record it (shared: do not change it)."""
        if not self._recorded:
            dumped = self.workflow.model_dump(mode="json", by_alias=True, exclude_none=True)
            self._recorded.update(dumped)
        return self._recorded

    @property
    def nodes(self) -> tuple[CompiledNode, ...]:
        """The top-level nodes, in document order."""
        return self.graph.nodes

    @property
    def index(self) -> Mapping[str, int]:
        """Node id to position."""
        return self.graph.index

    @property
    def plan(self) -> Plan:
        """The top-level DAG in the Rust extension."""
        return self.graph.plan

    @property
    def outputs(self) -> Mapping[str, Template] | None:
        """The compiled ``outputs`` templates, if the document has them."""
        return self.graph.outputs

    @property
    def leaves(self) -> tuple[str, ...]:
        """Top-level nodes without outgoing edges."""
        return self.graph.leaves

    def node(self, node_id: str) -> CompiledNode:
        """The compiled top-level node called ``node_id``."""
        return self.graph.node(node_id)
