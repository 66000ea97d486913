"""The compiler: a workflow document in, an immutable plan or every diagnostic out."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import jsonschema
from pydantic import ValidationError

from ._catalog import Catalog, NodeType
from ._diagnostics import Diagnostic
from ._diagnostics import DiagnosticCode as C
from ._errors import CompileError, ExpressionError, ManifestError
from ._expressions import Const, Expression, Template, compile_expression, compile_template
from ._expressions import Mapping as Mapping_
from ._inputs import InputsSchema
from ._model import Edge, Node, RetryPolicy, Workflow
from ._planning import Plan
from .runtimes._wasm import check_wasm_node_type

__all__ = ["CompiledNode", "CompiledWorkflow", "compile_workflow", "parse_workflow"]

SCOPE_NAMES = frozenset({"input", "var", "env", "execution"})
BODY_SCOPE_NAMES = frozenset({"loop", "parallel"})
# Node ids must not shadow the names in scope nor CEL's reserved words.
_CEL_RESERVED = (
    "true false null in as break const continue else for function if import let loop "
    "namespace package return void while"
)
RESERVED_IDS = SCOPE_NAMES | BODY_SCOPE_NAMES | frozenset(_CEL_RESERVED.split())
ERROR_PORT = "error"
LOOP_CONDITIONS = ("while", "do_while")
_NO_RETRY = RetryPolicy()


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


@dataclass(frozen=True, slots=True)
class _Context:
    """What a graph's expressions may read besides its own nodes."""

    scope_names: frozenset[str] = SCOPE_NAMES
    outer_visible: frozenset[str] = frozenset()  # outer nodes upstream of the enclosing node
    outer_ids: frozenset[str] = frozenset()  # every outer node id
    prefix: str = ""  # "each." for diagnostics inside a body
    scope_var: str | None = None


def parse_workflow(raw: Any, *, default_id: str | None = None) -> Workflow:
    """Validate a loaded YAML/JSON value as a workflow; ``CompileError`` lists every problem."""
    if not isinstance(raw, dict):
        found = type(raw).__name__ if raw is not None else "an empty document"
        raise CompileError(
            [Diagnostic("error", C.INVALID_VALUE, f"a workflow is a mapping, found {found}")]
        )
    try:
        workflow = Workflow.model_validate(raw)
    except ValidationError as exc:
        raise CompileError(_schema_diagnostics(exc, raw)) from None
    if workflow.id is None and default_id is not None:
        workflow = workflow.model_copy(update={"id": default_id})
    return workflow


def compile_workflow(
    workflow: Workflow, catalog: Catalog, *, runtimes: Iterable[str] | None = None
) -> CompiledWorkflow:
    """Check ``workflow`` against ``catalog`` and build its plan.

    Raises ``CompileError`` carrying every diagnostic when any is an error.
    """
    diagnostics: list[Diagnostic] = []
    compiler = _Compiler(
        workflow.nodes,
        workflow.edges,
        workflow.outputs,
        catalog=catalog,
        runtimes=set(runtimes) if runtimes is not None else None,
        diagnostics=diagnostics,
        context=_Context(),
    )
    graph = compiler.compile()
    inputs = compiler.inputs_schema(workflow.inputs)
    if any(d.severity == "error" for d in diagnostics):
        raise CompileError(diagnostics)
    return CompiledWorkflow(
        workflow=workflow,
        workflow_id=workflow.id or "workflow",
        graph=graph,
        inputs=inputs,
        warnings=tuple(diagnostics),
    )


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
        diagnostics: list[Diagnostic],
        context: _Context,
    ) -> None:
        self.nodes = nodes
        self.edges = edges
        self.outputs = outputs
        self.catalog = catalog
        self.runtimes = runtimes
        self.diagnostics = diagnostics
        self.context = context
        self.index: dict[str, int] = {}
        # Names each node reads (its own expressions and, for loops, its body's outer reads).
        self.reads: dict[int, set[str]] = {}
        self.outer_reads: set[str] = set()
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
        ancestors: dict[int, frozenset[str]] = {}
        if cycle is not None:
            names = [nodes[i].id for i in cycle]
            path = " -> ".join([*names, names[0]])
            self.error(C.CYCLE, f"the edges form a cycle: {path}", node=names[0], field="edges")
        error_sources = {src for src, _, port in edges if port == ERROR_PORT}
        compiled: list[CompiledNode] = []
        for i, (node, node_type) in enumerate(zip(nodes, types, strict=True)):
            if cycle is None:
                ancestors[i] = frozenset(nodes[a].id for a in plan.ancestors(i))
            self.reads[i] = set()
            compiled_node = self._compile_node(
                node, i, node_type, ancestors.get(i), i in error_sources
            )
            if compiled_node is not None:
                compiled.append(compiled_node)
        outputs = self._compile_outputs()
        has_outgoing = {src for src, _, _ in edges}
        leaves = tuple(n.id for i, n in enumerate(nodes) if i not in has_outgoing)
        readers: list[set[int]] = [set() for _ in nodes]
        for reader, read in self.reads.items():
            for name in read:
                source = self.index.get(name)
                if source is not None and source != reader:
                    readers[source].add(reader)
        kept = set(leaves) if outputs is None else set(self._output_reads)
        return CompiledGraph(
            nodes=tuple(compiled),
            index=MappingProxyType(dict(self.index)),
            plan=plan,
            outputs=MappingProxyType(outputs) if outputs is not None else None,
            leaves=leaves,
            readers=tuple(frozenset(r) for r in readers),
            kept=frozenset(kept),
            scope_var=self.context.scope_var,
        )

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
            if node.id in self.context.outer_ids:
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
        node_type = self.catalog.get(node.type)
        if node_type is None:
            hint = _suggest(node.type, [t.type for t in self.catalog])
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
        if (
            node_type.runtime == "python"
            and node_type.isolation == "inline"
            and not node_type.control
        ):
            try:
                self.catalog.python_handler(node_type)
            except ManifestError as exc:
                self.error(C.HANDLER_NOT_FOUND, exc.message, node=node.id, field="type")
        if node_type.runtime == "native" and node_type.module is not None:
            try:
                self.catalog.module_handler(node_type)
            except ManifestError as exc:
                self.error(C.HANDLER_NOT_FOUND, exc.message, node=node.id, field="type")
        if node_type.runtime == "wasm":
            for problem in check_wasm_node_type(node_type):
                self.error(C.INVALID_WASM_MODULE, problem, node=node.id, field="type")
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
                    hint = _suggest(name, list(self.index))
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
        upstream: frozenset[str] | None,
        has_error_edge: bool,
    ) -> CompiledNode | None:
        self._reader = index
        when = None
        if node.when is not None:
            when = self._expression(node.when, node.id, "when", upstream)
        expression_params: dict[str, Expression] = {}
        template_values: dict[str, Any] = {}
        expression_keys = set(node_type.expression_params) if node_type else set()
        control = node_type.control if node_type else None
        body: CompiledGraph | None = None
        conditions: dict[str, Expression] = {}
        if control is not None and node.body is not None:
            body, conditions = self._compile_body(node, control, upstream)
        for key, value in node.with_.items():
            if key in conditions or (control == "loop" and key in LOOP_CONDITIONS):
                continue
            if key in expression_keys:
                if not self._is_cel_source(value, node.id, key):
                    continue
                parsed = self._expression(_strip_braces(value), node.id, f"with.{key}", upstream)
                if parsed is not None:
                    expression_params[key] = parsed
            else:
                template_values[key] = value
        per_key: dict[str, Template] = {}
        for key, value in template_values.items():
            template = self._template(value, node.id, f"with.{key}", upstream)
            if template is not None:
                per_key[key] = template
        if len(per_key) < len(template_values) or node_type is None:
            return None
        self._check_params(node, node_type, per_key, set(expression_params))
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
        )

    def _compile_body(
        self, node: Node, control: str, upstream: frozenset[str] | None
    ) -> tuple[CompiledGraph | None, dict[str, Expression]]:
        assert node.body is not None  # checked by the caller
        var = "loop" if control == "loop" else "parallel"
        ctx = self.context
        visible = (upstream or frozenset()) | ctx.outer_visible
        sub = _Compiler(
            node.body.nodes,
            node.body.edges,
            node.body.outputs,
            catalog=self.catalog,
            runtimes=self.runtimes,
            diagnostics=self.diagnostics,
            context=_Context(
                scope_names=ctx.scope_names | {var},
                outer_visible=frozenset(visible),
                outer_ids=ctx.outer_ids | frozenset(self.index),
                prefix=f"{ctx.prefix}{node.id}.",
                scope_var=var,
            ),
        )
        body = sub.compile()
        # Outer nodes the body reads are read by the loop node itself: they must stay in memory.
        self.reads[self._reader] |= sub.outer_reads
        self._note_outer(sub.outer_reads)
        conditions: dict[str, Expression] = {}
        if control == "loop":
            for key in LOOP_CONDITIONS:
                source = node.with_.get(key)
                if source is None or not self._is_cel_source(source, node.id, key):
                    continue
                expression = sub.condition(_strip_braces(source), node.id, f"with.{key}", key)
                if expression is not None:
                    conditions[key] = expression
        self.reads[self._reader] |= sub.outer_reads
        self._note_outer(sub.outer_reads)
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
            expression = compile_expression(source)
        except ExpressionError as exc:
            self.diagnostics.append(
                Diagnostic(
                    "error",
                    C.EXPRESSION_SYNTAX,
                    f"{exc.message} in {source!r}",
                    self.context.prefix.rstrip(".") or loop_id,
                    field,
                )
            )
            return None
        body_ids = frozenset(self.index) if key == "do_while" else frozenset()
        saved = self.context.prefix
        for name in sorted(expression.references):
            if name in self.context.scope_names or name in body_ids:
                continue
            if name in self.context.outer_visible:
                self.outer_reads.add(name)
                continue
            self.diagnostics.append(
                Diagnostic(
                    "error",
                    C.UNKNOWN_REFERENCE if name not in self.context.outer_ids else C.NOT_UPSTREAM,
                    f"'{name}' cannot be read in `{key}`"
                    + (" (body nodes are readable in do_while only)" if name in self.index else ""),
                    saved.rstrip("."),
                    field,
                )
            )
        return expression

    def _note_outer(self, names: set[str]) -> None:
        # Names a nested body reads that live outside this graph are outer reads here too.
        self.outer_reads |= {n for n in names if n not in self.index}

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
        partial = dict(schema)
        if "required" in partial:
            partial["required"] = [r for r in partial["required"] if r not in templated]
        validator = jsonschema.Draft202012Validator(partial)
        for error in sorted(validator.iter_errors(constant), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in error.absolute_path)
            self.error(
                C.INVALID_PARAMETERS,
                f"{node_type.type}: {error.message}",
                node=node.id,
                field=f"with.{path}" if path else "with",
            )

    # expressions ---------------------------------------------------------------------------

    def _expression(
        self, source: str, node: str | None, field: str, upstream: frozenset[str] | None
    ) -> Expression | None:
        try:
            expression = compile_expression(source)
        except ExpressionError as exc:
            self.error(C.EXPRESSION_SYNTAX, f"{exc.message} in {source!r}", node, field)
            return None
        self._check_references(expression, node, field, upstream)
        return expression

    def _template(
        self, value: Any, node: str | None, field: str, upstream: frozenset[str] | None
    ) -> Template | None:
        try:
            template = compile_template(value)
        except ExpressionError as exc:
            self.error(C.EXPRESSION_SYNTAX, f"{exc.message} in {exc.source!r}", node, field)
            return None
        for expression in template.expressions():
            self._check_references(expression, node, field, upstream)
        return template

    def _check_references(
        self,
        expression: Expression,
        node: str | None,
        field: str,
        upstream: frozenset[str] | None,
    ) -> None:
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
                elif upstream is not None and name not in upstream:
                    self.error(
                        C.NOT_UPSTREAM,
                        f"'{name}' is not upstream of '{node}': add an edge path from it, "
                        "so its output exists when this node runs",
                        node,
                        field,
                    )
            elif name in ctx.outer_visible:
                self.outer_reads.add(name)
            elif name in ctx.outer_ids:
                loop_node = ctx.prefix.rstrip(".").rsplit(".", 1)[-1]
                self.error(
                    C.NOT_UPSTREAM,
                    f"'{name}' is not upstream of '{loop_node}', whose body reads it",
                    node,
                    field,
                )
            else:
                hint = _suggest(name, [*self.index, *ctx.scope_names, *ctx.outer_visible])
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
            template = self._template(value, None, f"outputs.{name}", None)
            compiled[name] = template if template is not None else Const(None)
        return compiled

    def inputs_schema(self, schema: dict[str, Any] | None) -> InputsSchema:
        """The workflow's inputs schema, checked; a diagnostic when it is not JSON Schema."""
        try:
            return InputsSchema(schema)
        except jsonschema.SchemaError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            self.error(
                C.INVALID_INPUTS_SCHEMA,
                f"the inputs schema is not valid JSON Schema: {exc.message}",
                field=f"inputs.{where}" if where else "inputs",
            )
            return InputsSchema(None)


def _strip_braces(source: str) -> str:
    """``if: "{{ x > 1 }}"`` is accepted as well as the bare ``if: "x > 1"``."""
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        return stripped[2:-2].strip()
    return source


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


# pydantic errors -> diagnostics ------------------------------------------------------------

_PYDANTIC_CODES = {"extra_forbidden": C.UNKNOWN_KEY, "missing": C.MISSING_FIELD}


def _schema_diagnostics(exc: ValidationError, raw: dict[str, Any]) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors():
        loc = list(error["loc"])
        node, field = _locate(loc, raw)
        code = _PYDANTIC_CODES.get(error["type"], C.INVALID_VALUE)
        if code == C.UNKNOWN_KEY:
            message = f"unknown key '{loc[-1]}'"
        elif code == C.MISSING_FIELD:
            message = f"'{loc[-1]}' is required"
        else:
            message = str(error["msg"])
        diagnostics.append(Diagnostic("error", code, message, node, field))
    return diagnostics


def _locate(loc: list[Any], raw: dict[str, Any]) -> tuple[str | None, str | None]:
    """The node id and field a pydantic error location points at, using the raw document."""
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
        nodes = raw.get("nodes")
        node_id = None
        if isinstance(nodes, list) and loc[1] < len(nodes) and isinstance(nodes[loc[1]], dict):
            found = nodes[loc[1]].get("id")
            node_id = str(found) if found is not None else None
        rest = ".".join(str(p) for p in loc[2:])
        if node_id is None:
            return None, f"nodes[{loc[1]}]" + (f".{rest}" if rest else "")
        return node_id, rest or None
    if len(loc) >= 2 and loc[0] == "edges" and isinstance(loc[1], int):
        rest = ".".join(str(p) for p in loc[2:])
        return None, f"edges[{loc[1]}]" + (f".{rest}" if rest else "")
    return None, ".".join(str(p) for p in loc) or None
