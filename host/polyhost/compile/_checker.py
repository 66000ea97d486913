"""The checker: a workflow checked against the catalog and the runtimes, compiled into a plan
(``CompiledWorkflow``) or every diagnostic out."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._errors import CompileError, ExpressionError, PolyhostError
from .._limits import Limits, default_limits
from ..plan._bridge import Plan
from ..router._router import RuntimeRouter
from ..workflow._catalog import Catalog, NodeType
from ..workflow._diagnostics import Diagnostic, Severity
from ..workflow._diagnostics import DiagnosticCode as C
from ..workflow._document import gc_paused
from ..workflow._model import Edge, Node, RetryPolicy, Workflow
from ._compiled import ERROR_PORT, CompiledGraph, CompiledNode, CompiledWorkflow
from ._expressions import (
    Const,
    Expression,
    Template,
    compile_expression,
    compile_template,
    diagnose,
)
from ._expressions import Mapping as Mapping_
from ._inputs import InputsSchema
from ._schema import schema_errors, schema_parameter_problems, validator_for
from ._tools import ToolBinding, resolve_tools, tool_choice_problem
from ._triggers import check_triggers

__all__ = ["PLACEHOLDER_TYPE", "Runtimes", "compile_workflow"]

# The runtimes a workflow may use: a router (whose runtimes also check their node types), the
# names of the available runtimes, or None for any (checks by the runtimes' plug-ins).
Runtimes = RuntimeRouter | Iterable[str] | None
_ANY_HOST = RuntimeRouter()  # no adapters: checks only

SCOPE_NAMES = frozenset({"input", "var", "env", "execution"})
BODY_SCOPE_NAMES = frozenset({"loop", "parallel"})
# Node ids must not shadow the names in scope nor CEL's reserved words.
_CEL_RESERVED = (
    "true false null in as break const continue else for function if import let loop "
    "namespace package return void while"
)
RESERVED_IDS = SCOPE_NAMES | BODY_SCOPE_NAMES | frozenset(_CEL_RESERVED.split())
LOOP_CONDITIONS = ("while", "do_while")
_NO_RETRY = RetryPolicy()
# Stands in for a node the model rejected, so that compiling the rest of the document neither
# trips over it nor reports the edges and reads that name it.
PLACEHOLDER_TYPE = "<invalid node>"
# "did you mean" compares a name with every candidate: offered for the first few only.
_MAX_HINTS = 20
_SOURCES_PER_PASS = 1024


@dataclass(frozen=True, slots=True)
class _Context:
    """What a graph's expressions may read besides its own nodes."""

    scope_names: frozenset[str] = SCOPE_NAMES
    # The node indexes of the enclosing graphs, innermost last (read through, never copied).
    outer_scopes: tuple[Mapping[str, int], ...] = ()
    prefix: str = ""  # "each." for diagnostics inside a body
    scope_var: str | None = None
    body_depth: int = 0


@dataclass(slots=True)
class _Shared:
    """What the graphs of one compile share: the "did you mean" hints left, and the findings
    of parameter checks already made (by node type, templated keys and constant values)."""

    hints_left: int = _MAX_HINTS
    params: dict[tuple[int, frozenset[str], str], list[tuple[Severity, str, str, str | None]]] = (
        field(default_factory=dict)
    )


def compile_workflow(
    workflow: Workflow,
    catalog: Catalog,
    *,
    runtimes: Runtimes = None,
    limits: Limits | None = None,
) -> CompiledWorkflow:
    """Check ``workflow`` against ``catalog`` and build its plan.

    Each node type's runtime checks it (through ``runtimes`` when it is a router); with names
    or a router, a node type whose runtime is not among them is an error.

    Raises ``CompileError`` carrying every diagnostic when any is an error.
    """
    limits = limits or default_limits()
    total = _count_nodes(workflow.nodes)
    if total > limits.max_nodes:
        raise CompileError(
            [
                Diagnostic(
                    "error",
                    C.LIMIT_EXCEEDED,
                    f"the workflow has {total:,} nodes, bodies included; the limit is "
                    f"max_nodes = {limits.max_nodes:,} (see docs/limits.md)",
                    field="nodes",
                )
            ]
        )
    diagnostics: list[Diagnostic] = []
    router = runtimes if isinstance(runtimes, RuntimeRouter) else _ANY_HOST
    available: set[str] | None = None
    if isinstance(runtimes, RuntimeRouter):
        available = set(runtimes.runtimes)
    elif runtimes is not None:
        available = set(runtimes)
    compiler = _Compiler(
        workflow.nodes,
        workflow.edges,
        workflow.outputs,
        catalog=catalog,
        runtimes=available,
        router=router,
        diagnostics=diagnostics,
        context=_Context(),
        limits=limits,
        shared=_Shared(),
    )
    with gc_paused():
        graph = compiler.compile()
    inputs = compiler.inputs_schema(workflow.inputs)
    diagnostics += check_triggers(workflow.triggers, inputs, limits)
    if any(d.severity == "error" for d in diagnostics):
        raise CompileError(diagnostics)
    return CompiledWorkflow(
        workflow=workflow,
        workflow_id=workflow.id or "workflow",
        graph=graph,
        inputs=inputs,
        warnings=tuple(diagnostics),
    )


def _count_nodes(nodes: list[Node]) -> int:
    total = 0
    stack = [nodes]
    while stack:
        level = stack.pop()
        total += len(level)
        stack.extend(n.body.nodes for n in level if n.body is not None)
    return total


class _Compiler:
    """Compiles one graph (a workflow's, or a body's) into ``CompiledGraph``."""

    def __init__(
        self,
        nodes: list[Node],
        edges: list[Edge],
        outputs: dict[str, Any] | None,
        *,
        catalog: Catalog,
        runtimes: set[str] | None,
        router: RuntimeRouter,
        diagnostics: list[Diagnostic],
        context: _Context,
        limits: Limits,
        shared: _Shared,
    ) -> None:
        self.nodes = nodes
        self.edges = edges
        self.outputs = outputs
        self.catalog = catalog
        self.runtimes = runtimes
        self.router = router
        self.diagnostics = diagnostics
        self.context = context
        self.limits = limits
        self.shared = shared
        self.index: dict[str, int] = {}
        # Names each node reads (its own expressions and, for loops, its body's outer reads).
        self.reads: dict[int, set[str]] = {}
        self.outer_reads: set[str] = set()
        # Reads of enclosing graphs' nodes, (name, where, field), checked by the graph that
        # holds the name: it must be upstream of the node whose body reads it.
        self.outer_checks: list[tuple[str, str | None, str]] = []
        # (reader, source, where, field, message): reads whose source must be upstream of the
        # reader, checked together once the plan is known (see _check_upstream).
        self.upstream_checks: list[tuple[int, int, str | None, str, str]] = []
        self._output_reads: set[str] = set()
        self._reader = -1

    def error(
        self, code: str, message: str, node: str | None = None, field: str | None = None
    ) -> None:
        self.diagnostics.append(Diagnostic("error", code, message, self._where(node), field))

    def warning(
        self, code: str, message: str, node: str | None = None, field: str | None = None
    ) -> None:
        self.diagnostics.append(Diagnostic("warning", code, message, self._where(node), field))

    def _where(self, node: str | None) -> str | None:
        prefix = self.context.prefix
        if node is None:
            return prefix.rstrip(".") or None
        return f"{prefix}{node}"

    def compile(self) -> CompiledGraph:
        nodes = self.nodes
        if not nodes:
            self.error(C.EMPTY_WORKFLOW, "the workflow has no nodes", field="nodes")
        self._check_ids(nodes)
        types = [self._node_type(node) for node in nodes]
        edges = self._check_edges(types)
        plan = Plan(len(nodes), edges)
        cycle = plan.find_cycle()
        if cycle is not None:
            names = [nodes[i].id for i in cycle]
            path = " -> ".join([*names, names[0]])
            self.error(C.CYCLE, f"the edges form a cycle: {path}", node=names[0], field="edges")
        error_sources = {src for src, _, port in edges if port == ERROR_PORT}
        compiled: list[CompiledNode] = []
        for i, (node, node_type) in enumerate(zip(nodes, types, strict=True)):
            self.reads[i] = set()
            compiled_node = self._compile_node(node, i, node_type, i in error_sources)
            if compiled_node is not None:
                compiled.append(compiled_node)
        if cycle is None:
            self._check_upstream(plan, edges)
        outputs = self._compile_outputs()
        has_outgoing = {src for src, _, _ in edges}
        leaves = tuple(n.id for i, n in enumerate(nodes) if i not in has_outgoing)
        read_by: dict[int, set[int]] = {}
        for reader, read in self.reads.items():
            for name in read:
                source = self.index.get(name)
                if source is not None and source != reader:
                    read_by.setdefault(source, set()).add(reader)
        unread: frozenset[int] = frozenset()
        readers = [unread] * len(nodes)
        for source, by in read_by.items():
            readers[source] = frozenset(by)
        kept = set(leaves) if outputs is None else set(self._output_reads)
        return CompiledGraph(
            nodes=tuple(compiled),
            index=MappingProxyType(dict(self.index)),
            plan=plan,
            outputs=MappingProxyType(outputs) if outputs is not None else None,
            leaves=leaves,
            readers=tuple(readers),
            kept=frozenset(kept),
            scope_var=self.context.scope_var,
        )

    def _check_upstream(self, plan: Plan, edges: list[tuple[int, int, str]]) -> None:
        """Report each read whose source is not upstream of its reader.

        A read of a direct predecessor (the usual case) is settled by the edge. The rest are
        settled in batches of up to ``_SOURCES_PER_PASS`` sources: one pass in topological
        order, from the batch's first source to its last reader, gives every node the set of
        the batch's sources above it, as a bitset (a Python int) made of its predecessors'
        sets. Linear for reads that stay near in that order, and never quadratic in memory.
        """
        direct = {(src, dst) for src, dst, _ in edges}
        pending = [c for c in self.upstream_checks if (c[1], c[0]) not in direct]
        if not pending:
            return
        order = plan.topo_order()
        position = [0] * len(self.nodes)
        for rank, node in enumerate(order):
            position[node] = rank
        preds: dict[int, list[int]] = {}
        for src, dst, _ in edges:
            preds.setdefault(dst, []).append(src)
        sources = sorted({c[1] for c in pending}, key=position.__getitem__)
        failed: list[tuple[int, int, str | None, str, str]] = []
        for first in range(0, len(sources), _SOURCES_PER_PASS):
            bit = {s: i for i, s in enumerate(sources[first : first + _SOURCES_PER_PASS])}
            by_reader: dict[int, list[tuple[int, str | None, str, str]]] = {}
            for reader, source, where, at, message in pending:
                if source not in bit:
                    continue
                if position[reader] <= position[source]:  # not even after it in the order
                    failed.append((position[reader], source, where, at, message))
                else:
                    by_reader.setdefault(reader, []).append((source, where, at, message))
            if not by_reader:
                continue
            start = min(position[s] for s in bit)
            end = max(position[r] for r in by_reader)
            above: dict[int, int] = {}
            for node in order[start : end + 1]:
                mask = 0
                for pred in preds.get(node, ()):
                    mask |= above.get(pred, 0)
                    if pred in bit:
                        mask |= 1 << bit[pred]
                if mask:
                    above[node] = mask
                for source, where, at, message in by_reader.get(node, ()):
                    if not mask >> bit[source] & 1:
                        failed.append((position[node], source, where, at, message))
        for _, _, where, at, message in sorted(failed, key=lambda f: f[:2]):
            self.diagnostics.append(Diagnostic("error", C.NOT_UPSTREAM, message, where, at))

    def _hint(self, name: str, candidates: Iterable[str]) -> str:
        if self.shared.hints_left <= 0:
            return ""
        self.shared.hints_left -= 1
        return _suggest(name, list(candidates))

    def _outer(self, name: str) -> bool:
        return any(name in scope for scope in self.context.outer_scopes)

    # ids, types, edges ---------------------------------------------------------------------

    def _check_ids(self, nodes: list[Node]) -> None:
        for i, node in enumerate(nodes):
            if node.id in self.index:
                self.error(
                    C.DUPLICATE_ID,
                    f"the id '{node.id}' is used by more than one node",
                    node=node.id,
                    field=f"nodes[{i}].id",
                )
                continue
            self.index[node.id] = i
            if self._outer(node.id):
                self.error(
                    C.DUPLICATE_ID,
                    f"the id '{node.id}' is already used outside this body",
                    node=node.id,
                    field="id",
                )
            if node.id in RESERVED_IDS:
                self.error(
                    C.RESERVED_ID,
                    f"'{node.id}' is a reserved name and cannot be a node id",
                    node=node.id,
                    field="id",
                )

    def _node_type(self, node: Node) -> NodeType | None:
        if node.type == PLACEHOLDER_TYPE:
            return None
        node_type = self.catalog.get(node.type)
        if node_type is None:
            hint = self._hint(node.type, (t.type for t in self.catalog))
            for name, problem in self.catalog.sidecar_problems.items():
                hint += f"; sidecar {name} could not list its node types: {problem}"
            self.error(
                C.UNKNOWN_NODE_TYPE,
                f"unknown node type '{node.type}'{hint}",
                node=node.id,
                field="type",
            )
            return None
        if self.runtimes is not None and node_type.runtime not in self.runtimes:
            self.error(
                C.RUNTIME_UNAVAILABLE,
                f"node type '{node.type}' runs on the {node_type.runtime} runtime, "
                "which this host does not have",
                node=node.id,
                field="type",
            )
        if node.body is not None and node_type.control is None:
            self.error(
                C.UNEXPECTED_BODY,
                f"node type '{node.type}' takes no body",
                node=node.id,
                field="body",
            )
        if node.body is None and node_type.control is not None:
            self.error(
                C.MISSING_FIELD,
                f"a {node.type} node needs a `body` (nodes, edges, outputs)",
                node=node.id,
                field="body",
            )
        for code, message, key in self.router.check(node_type, self.catalog, self.limits):
            self.error(code, message, node=node.id, field=key or "type")
        return node_type

    def _check_edges(self, types: list[NodeType | None]) -> list[tuple[int, int, str]]:
        nodes = self.nodes
        edges: list[tuple[int, int, str]] = []
        seen: set[tuple[str, str, str]] = set()
        for i, edge in enumerate(self.edges):
            where = f"edges[{i}]"
            src = self.index.get(edge.source)
            dst = self.index.get(edge.target)
            for end, name, key in ((src, edge.source, "from"), (dst, edge.target, "to")):
                if end is None:
                    hint = self._hint(name, self.index)
                    self.error(
                        C.UNKNOWN_NODE,
                        f"edge {key} unknown node '{name}'{hint}",
                        node=name,
                        field=f"{where}.{key}",
                    )
            if src is None or dst is None:
                continue
            source_type = types[src]
            if source_type is not None:
                ports = (*source_type.ports_for(nodes[src].with_), ERROR_PORT)
                if edge.port not in ports:
                    self.error(
                        C.UNKNOWN_PORT,
                        f"node '{edge.source}' ({source_type.type}) has no port "
                        f"'{edge.port}'; its ports are {', '.join(ports)}",
                        node=edge.source,
                        field=f"{where}.port",
                    )
                    continue
            key_ = (edge.source, edge.target, edge.port)
            if key_ in seen:
                self.warning(
                    C.DUPLICATE_EDGE,
                    f"the edge {edge.source} -> {edge.target} is listed twice",
                    node=edge.target,
                    field=where,
                )
                continue
            seen.add(key_)
            edges.append((src, dst, edge.port))
        return edges

    # nodes ---------------------------------------------------------------------------------

    def _compile_node(
        self,
        node: Node,
        index: int,
        node_type: NodeType | None,
        has_error_edge: bool,
    ) -> CompiledNode | None:
        self._reader = index
        defaults = self.catalog.defaults.get(node.type) if node_type else None
        if defaults:
            node = node.model_copy(update={"with_": {**defaults, **node.with_}})
        when = None
        if node.when is not None:
            when = self._expression(node.when, node.id, "when")
        expression_params: dict[str, Expression] = {}
        template_values: dict[str, Any] = {}
        expression_keys = set(node_type.expression_params) if node_type else set()
        control = node_type.control if node_type else None
        body: CompiledGraph | None = None
        conditions: dict[str, Expression] = {}
        if control is not None and node.body is not None:
            body, conditions = self._compile_body(node, control)
        broken: set[str] = set()  # given, with a diagnostic of their own already
        for key, value in node.with_.items():
            if key in conditions or (control == "loop" and key in LOOP_CONDITIONS):
                continue
            if key in expression_keys:
                if not self._is_cel_source(value, node.id, key):
                    broken.add(key)
                    continue
                parsed = self._expression(_strip_braces(value), node.id, f"with.{key}")
                if parsed is not None:
                    expression_params[key] = parsed
                else:
                    broken.add(key)
            else:
                template_values[key] = value
        per_key: dict[str, Template] = {}
        for key, value in template_values.items():
            template = self._template(value, node.id, f"with.{key}")
            if template is not None:
                per_key[key] = template
        if len(per_key) < len(template_values) or node_type is None:
            return None
        self._check_params_once(node, node_type, per_key, set(expression_params) | broken)
        tools = self._tools(node, node_type, per_key)
        if tools is None:
            return None
        params: Template = (
            Const(template_values)
            if all(t.is_constant for t in per_key.values())
            else Mapping_(per_key)
        )
        return CompiledNode(
            id=node.id,
            index=index,
            type=node_type,
            params=params,
            expression_params=MappingProxyType(expression_params),
            when=when,
            retry=node.retry or _NO_RETRY,
            timeout=node.timeout,
            on_error=node.on_error,
            has_error_edge=has_error_edge,
            name=node.name,
            body=body,
            conditions=MappingProxyType(conditions),
            tools=tools,
        )

    def _tools(
        self, node: Node, node_type: NodeType, per_key: dict[str, Template]
    ) -> tuple[ToolBinding, ...] | None:
        """The node types a node offers as tools; None when they cannot be used."""

        def report(code: str, message: str, at: str) -> None:
            self.error(code, message, node=node.id, field=at)

        key = node_type.tools_param
        tools: tuple[ToolBinding, ...] | None = ()
        if key is not None and key in node.with_:
            if per_key[key].is_constant:
                tools = resolve_tools(node.with_[key], f"with.{key}", self.catalog, report)
            else:
                report(
                    C.INVALID_PARAMETERS,
                    f"`{key}` must be written out: the node types offered are fixed when the "
                    "workflow compiles",
                    f"with.{key}",
                )
                tools = None
        choice_key = node_type.tool_choice_param
        if tools is None or choice_key is None or choice_key not in node.with_:
            return tools
        if not per_key[choice_key].is_constant:
            return tools  # a templated choice is checked when the node runs
        names = [binding.spec.name for binding in tools]
        problem = tool_choice_problem(node.with_[choice_key], names)
        if problem is not None:
            report(C.INVALID_PARAMETERS, problem, f"with.{choice_key}")
            return None
        return tools

    def _compile_body(
        self, node: Node, control: str
    ) -> tuple[CompiledGraph | None, dict[str, Expression]]:
        assert node.body is not None  # checked by the caller
        var = "loop" if control == "loop" else "parallel"
        ctx = self.context
        if ctx.body_depth >= self.limits.max_body_depth:
            self.error(
                C.LIMIT_EXCEEDED,
                f"loop and parallel bodies are nested deeper than max_body_depth = "
                f"{self.limits.max_body_depth} (see docs/limits.md)",
                node=node.id,
                field="body",
            )
            return None, {}
        sub = _Compiler(
            node.body.nodes,
            node.body.edges,
            node.body.outputs,
            catalog=self.catalog,
            runtimes=self.runtimes,
            router=self.router,
            diagnostics=self.diagnostics,
            context=_Context(
                scope_names=ctx.scope_names | {var},
                outer_scopes=(*ctx.outer_scopes, self.index),
                prefix=f"{ctx.prefix}{node.id}.",
                scope_var=var,
                body_depth=ctx.body_depth + 1,
            ),
            limits=self.limits,
            shared=self.shared,
        )
        body = sub.compile()
        conditions: dict[str, Expression] = {}
        if control == "loop":
            for key in LOOP_CONDITIONS:
                source = node.with_.get(key)
                if source is None or not self._is_cel_source(source, node.id, key):
                    continue
                expression = sub.condition(_strip_braces(source), node.id, f"with.{key}", key)
                if expression is not None:
                    conditions[key] = expression
        # Outer nodes the body reads are read by the loop node itself: they must be upstream
        # of it, and stay in memory while it runs.
        self.reads[self._reader] |= sub.outer_reads
        for name, where, at in sub.outer_checks:
            source = self.index.get(name)
            if source is None:  # further out: the node enclosing this graph reads it
                self.outer_reads.add(name)
                self.outer_checks.append((name, where, at))
                continue
            self.upstream_checks.append(
                (
                    self._reader,
                    source,
                    where,
                    at,
                    f"'{name}' is not upstream of '{self._where(node.id)}', whose body reads it",
                )
            )
        return body, conditions

    def _is_cel_source(self, value: Any, node: str, key: str) -> bool:
        if isinstance(value, str):
            return True
        self.error(
            C.INVALID_PARAMETERS,
            f"'{key}' must be a CEL expression (a string)",
            node=node,
            field=f"with.{key}",
        )
        return False

    def condition(self, source: str, loop_id: str, field: str, key: str) -> Expression | None:
        """A loop's `while`/`do_while`, checked in the body's scope (outer names, `loop`, and
        for `do_while` the body's own nodes)."""
        try:
            expression = compile_expression(source, self.limits)
        except ExpressionError as exc:
            code, message = diagnose(exc)
            self.diagnostics.append(
                Diagnostic(
                    "error",
                    code,
                    message,
                    self.context.prefix.rstrip(".") or loop_id,
                    field,
                )
            )
            return None
        where = self.context.prefix.rstrip(".")
        for name in sorted(expression.references):
            if name in self.context.scope_names or (key == "do_while" and name in self.index):
                continue
            if self._outer(name):
                self.outer_reads.add(name)
                self.outer_checks.append((name, where, field))
                continue
            self.diagnostics.append(
                Diagnostic(
                    "error",
                    C.UNKNOWN_REFERENCE,
                    f"'{name}' cannot be read in `{key}`"
                    + (" (body nodes are readable in do_while only)" if name in self.index else ""),
                    where,
                    field,
                )
            )
        return expression

    def _check_params_once(
        self,
        node: Node,
        node_type: NodeType,
        per_key: dict[str, Template],
        expression_keys: set[str],
    ) -> None:
        """``_check_params``, its findings reused for the next node of the same type with the
        same constant parameters (large workflows repeat them)."""
        templated = expression_keys | {k for k, t in per_key.items() if not t.is_constant}
        constant = {k: node.with_[k] for k, t in per_key.items() if t.is_constant}
        try:
            text = (
                "{}"
                if not constant
                else json.dumps(constant, sort_keys=True)
                if len(constant) < 16
                else ""
            )
        except (TypeError, ValueError):
            text = ""
        if not text or len(text) > 1024:
            self._check_params(node, node_type, per_key, expression_keys)
            return
        key = (id(node_type), frozenset(templated), text)
        found = self.shared.params.get(key)
        if found is None:
            before = len(self.diagnostics)
            self._check_params(node, node_type, per_key, expression_keys)
            found = [(d.severity, d.code, d.message, d.field) for d in self.diagnostics[before:]]
            self.shared.params[key] = found
            return
        where = self._where(node.id)
        for severity, code, message, at in found:
            self.diagnostics.append(Diagnostic(severity, code, message, where, at))

    def _check_params(
        self,
        node: Node,
        node_type: NodeType,
        per_key: dict[str, Template],
        expression_keys: set[str],
    ) -> None:
        schema = node_type.input_schema
        if not schema:
            return
        # Only values without templates can be checked now; the rest is checked at run time.
        templated = expression_keys | {k for k, t in per_key.items() if not t.is_constant}
        constant = {k: node.with_[k] for k, t in per_key.items() if t.is_constant}
        try:
            validator = validator_for(schema)
            if templated & set(schema.get("required") or ()):
                partial = dict(schema)
                partial["required"] = [r for r in partial["required"] if r not in templated]
                validator = validator.evolve(schema=partial)
            errors = schema_errors(validator, constant, self.limits)
            errors += schema_parameter_problems(node_type.type, constant, self.limits)
        except PolyhostError as exc:
            code = C.LIMIT_EXCEEDED if exc.code == C.LIMIT_EXCEEDED else C.INVALID_PARAMETERS
            self.error(code, f"{node_type.type}: {exc.message}", node=node.id, field="with")
            return
        for error in errors:
            path = ".".join(str(p) for p in error.absolute_path)
            self.error(
                C.INVALID_PARAMETERS,
                f"{node_type.type}: {error.message}",
                node=node.id,
                field=f"with.{path}" if path else "with",
            )
        if not errors:
            # What the runtime checks itself (a native node: a `where`'s syntax and nesting).
            for code, message, key in self.router.check_params(node_type, constant, self.limits):
                self.error(
                    C.LIMIT_EXCEEDED if code == C.LIMIT_EXCEEDED else C.INVALID_PARAMETERS,
                    f"{node_type.type}: {message}",
                    node=node.id,
                    field=f"with.{key}" if key else "with",
                )

    # expressions ---------------------------------------------------------------------------

    def _expression(self, source: str, node: str | None, field: str) -> Expression | None:
        try:
            expression = compile_expression(source, self.limits)
        except ExpressionError as exc:
            self.error(*diagnose(exc), node, field)
            return None
        self._check_references(expression, node, field)
        return expression

    def _template(self, value: Any, node: str | None, field: str) -> Template | None:
        try:
            template = compile_template(value, self.limits)
        except ExpressionError as exc:
            self.error(*diagnose(exc), node, field)
            return None
        for expression in template.expressions():
            self._check_references(expression, node, field)
        return template

    def _check_references(self, expression: Expression, node: str | None, field: str) -> None:
        ctx = self.context
        reads = self._output_reads if node is None else self.reads[self._reader]
        for name in sorted(expression.references):
            if name in ctx.scope_names:
                continue
            if name in BODY_SCOPE_NAMES:
                self.error(
                    C.UNKNOWN_REFERENCE,
                    f"'{name}' is only in scope inside a {name} body",
                    node,
                    field,
                )
            elif name in self.index:
                reads.add(name)
                if node is not None and name == node:
                    self.error(
                        C.NOT_UPSTREAM, f"a node cannot read its own output ('{name}')", node, field
                    )
                elif node is not None:
                    self.upstream_checks.append(
                        (
                            self._reader,
                            self.index[name],
                            self._where(node),
                            field,
                            f"'{name}' is not upstream of '{node}': add an edge path from it, "
                            "so its output exists when this node runs",
                        )
                    )
            elif self._outer(name):
                self.outer_reads.add(name)
                self.outer_checks.append((name, self._where(node), field))
            else:
                hint = self._hint(
                    name, [*self.index, *ctx.scope_names, *(n for s in ctx.outer_scopes for n in s)]
                )
                self.error(
                    C.UNKNOWN_REFERENCE,
                    f"'{name}' is not a node id nor a name in scope{hint}",
                    node,
                    field,
                )

    def _compile_outputs(self) -> dict[str, Template] | None:
        outputs = self.outputs
        if outputs is None:
            return None
        compiled: dict[str, Template] = {}
        for name, value in outputs.items():
            template = self._template(value, None, f"outputs.{name}")
            compiled[name] = template if template is not None else Const(None)
        return compiled

    def inputs_schema(self, schema: dict[str, Any] | None) -> InputsSchema:
        """The workflow's inputs schema, checked; a diagnostic (with its path) per problem."""
        inputs = InputsSchema(schema, self.limits)
        for problem in inputs.problems:
            self.error(
                C.LIMIT_EXCEEDED if problem.limit else C.INVALID_INPUTS_SCHEMA,
                f"the inputs schema: {problem.message}",
                field=problem.where("inputs"),
            )
        return inputs


def _strip_braces(source: str) -> str:
    """``if: "{{ x > 1 }}"`` is accepted as well as the bare ``if: "x > 1"``."""
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        return stripped[2:-2].strip()
    return source


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""
