"""The compiler rejects each kind of bad workflow, naming the node and the field."""

from __future__ import annotations

from typing import Any

import pytest

from polyhost import Catalog, CompileError, Diagnostic
from polyhost.compile._checker import compile_workflow
from polyhost.compile._parsing import parse_workflow
from tests.helpers.workflows import doc


def diagnostics(catalog: Catalog, document: dict[str, Any]) -> list[Diagnostic]:
    with pytest.raises(CompileError) as info:
        compile_workflow(parse_workflow(document), catalog)
    return [d for d in info.value.diagnostics if d.severity == "error"]


def find(found: list[Diagnostic], code: str) -> Diagnostic:
    matches = [d for d in found if d.code == code]
    assert matches, f"no {code} among {[d.render() for d in found]}"
    return matches[0]


def test_unknown_keys_are_rejected_with_node_and_field(catalog: Catalog) -> None:
    document = doc([{"id": "a", "type": "core.log", "with": {"message": "x"}, "retyr": {}}])
    document["outptus"] = {}
    found = diagnostics(catalog, document)
    node_level = [d for d in found if d.node == "a"]
    assert node_level and node_level[0].code == "unknown_key" and node_level[0].field == "retyr"
    top = [d for d in found if d.field == "outptus"]
    assert top and top[0].code == "unknown_key"


def test_missing_version_and_bad_retry_value(catalog: Catalog) -> None:
    document = doc([{"id": "a", "type": "core.log", "retry": {"attempts": 0}}])
    del document["version"]
    found = diagnostics(catalog, document)
    assert find(found, "missing_field").field == "version"
    bad = find(found, "invalid_value")
    assert (bad.node, bad.field) == ("a", "retry.attempts")


def test_duplicate_and_reserved_ids(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [
                {"id": "a", "type": "core.transform"},
                {"id": "a", "type": "core.transform"},
                {"id": "input", "type": "core.transform"},
            ]
        ),
    )
    assert find(found, "duplicate_id").node == "a"
    assert find(found, "reserved_id").node == "input"


def test_unknown_node_type_suggests_the_near_one(catalog: Catalog) -> None:
    found = diagnostics(catalog, doc([{"id": "a", "type": "core.transfrom"}]))
    diag = find(found, "unknown_node_type")
    assert (diag.node, diag.field) == ("a", "type")
    assert "core.transform" in diag.message


def test_edges_to_unknown_nodes_and_ports(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [{"id": "a", "type": "core.transform"}, {"id": "b", "type": "core.transform"}],
            ["a->ghost", "a.maybe->b"],
        ),
    )
    unknown = find(found, "unknown_node")
    assert unknown.node == "ghost" and unknown.field == "edges[0].to"
    port = find(found, "unknown_port")
    assert port.node == "a" and port.field == "edges[1].port" and "maybe" in port.message


def test_cycles_name_every_node_on_them(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [{"id": n, "type": "core.transform"} for n in ("start", "a", "b", "c")],
            ["start->a", "a->b", "b->c", "c->a"],
        ),
    )
    cycle = find(found, "cycle")
    assert "a -> b -> c -> a" in cycle.message
    assert cycle.node == "a"


def test_cel_syntax_errors_name_node_and_field(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [
                {"id": "a", "type": "core.transform", "when": "1 +"},
                {"id": "b", "type": "core.log", "with": {"message": "{{ a.value +* 2 }}"}},
                {"id": "c", "type": "core.condition", "with": {"if": "a.value >"}},
            ],
            ["a->b", "a->c"],
        ),
    )
    where = {(d.node, d.field) for d in found if d.code == "expression_syntax"}
    assert where == {("a", "when"), ("b", "with.message"), ("c", "with.if")}


def test_a_broken_condition_is_one_error_not_also_a_missing_one(catalog: Catalog) -> None:
    # `if` is given: only its own problem is reported, not "'if' is a required property".
    for source, code in (("{{", "expression_syntax"), (3, "invalid_parameters")):
        found = diagnostics(
            catalog, doc([{"id": "a", "type": "core.condition", "with": {"if": source}}])
        )
        assert [(d.code, d.field) for d in found] == [(code, "with.if")]


def test_unclosed_template_is_a_syntax_error(catalog: Catalog) -> None:
    found = diagnostics(
        catalog, doc([{"id": "a", "type": "core.log", "with": {"message": "{{ x"}}])
    )
    assert find(found, "expression_syntax").node == "a"


def test_references_must_be_upstream_and_known(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [
                {"id": "a", "type": "core.transform", "with": {"value": 1}},
                {"id": "b", "type": "core.transform", "with": {"value": "{{ a.value }}"}},
                {"id": "c", "type": "core.transform", "with": {"value": "{{ b.value + nope }}"}},
                {"id": "d", "type": "core.transform", "with": {"value": "{{ loop.index }}"}},
            ],
            ["a->c"],
        ),
    )
    not_upstream = find(found, "not_upstream")
    assert (not_upstream.node, not_upstream.field) == ("b", "with.value")
    names = {
        d.message.split("'")[1] for d in found if d.code in {"unknown_reference", "not_upstream"}
    }
    assert {"a", "b", "nope", "loop"} <= names


def test_comprehension_variables_are_not_references(catalog: Catalog) -> None:
    document = doc(
        [
            {"id": "rows", "type": "core.transform", "with": {"value": [{"sum": 5}]}},
            {
                "id": "big",
                "type": "core.condition",
                "with": {"if": "rows.value.exists(r, r.sum > 3)"},
            },
        ],
        ["rows->big"],
    )
    compiled = compile_workflow(parse_workflow(document), catalog)
    assert compiled.node("big").expression_params["if"].references == {"rows"}


def test_constant_parameters_are_checked_against_the_input_schema(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [
                {"id": "h", "type": "core.http", "with": {"url": "http://x", "method": 42}},
                {"id": "l", "type": "core.log", "with": {"mesage": "typo"}},
                {"id": "w", "type": "core.wait", "with": {"duration": "{{ input.d }}"}},
            ]
        ),
    )
    bad = [d for d in found if d.code == "invalid_parameters"]
    assert {(d.node, d.field) for d in bad} >= {("h", "with.method"), ("l", "with")}
    # A templated value is checked at run time, not now: w has no diagnostic.
    assert not [d for d in found if d.node == "w"]


def test_all_errors_are_reported_at_once(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [
                {"id": "a", "type": "nope.type"},
                {"id": "b", "type": "core.transform", "when": "(("},
                {"id": "input", "type": "core.transform"},
            ],
            ["a->missing"],
        ),
    )
    codes = {d.code for d in found}
    assert {"unknown_node_type", "expression_syntax", "reserved_id", "unknown_node"} <= codes


def test_invalid_inputs_schema(catalog: Catalog) -> None:
    document = doc(
        [{"id": "a", "type": "core.transform"}],
        inputs={"type": "object", "properties": {"n": {"type": "integr"}}},
    )
    assert find(diagnostics(catalog, document), "invalid_inputs_schema").field.startswith("inputs")


def test_a_valid_workflow_compiles_to_a_plan(catalog: Catalog) -> None:
    document = doc(
        [
            {"id": "a", "type": "core.transform", "with": {"value": 1}},
            {"id": "b", "type": "core.condition", "with": {"if": "a.value == 1"}},
            {"id": "c", "type": "core.log", "with": {"message": "{{ a.value }}"}},
        ],
        ["a->b", "b.true->c"],
    )
    compiled = compile_workflow(parse_workflow(document), catalog)
    assert compiled.plan.topo_order() == [0, 1, 2]
    assert compiled.leaves == ("c",)
    assert compiled.node("c").params.is_constant is False


def test_unknown_python_handler_is_a_compile_error(tmp_path: Any) -> None:
    manifest = tmp_path / "polyhost.toml"
    manifest.write_text(
        '[[nodes]]\ntype = "acme.gone"\nruntime = "python"\nhandler = "no_such_module:f"\n'
    )
    catalog = Catalog.with_builtins()
    catalog.load_manifest(manifest)
    found = diagnostics(catalog, doc([{"id": "a", "type": "acme.gone"}]))
    assert find(found, "handler_not_found").node == "a"


def test_bodies_are_checked_like_workflows(catalog: Catalog) -> None:
    found = diagnostics(
        catalog,
        doc(
            [
                {"id": "a", "type": "core.transform", "with": {"value": 1}},
                {"id": "late", "type": "core.transform", "with": {"value": 2}},
                {
                    "id": "l",
                    "type": "core.loop",
                    "with": {"count": 2, "while": "inner.value > 0"},
                    "body": {
                        "nodes": [
                            {"id": "inner", "type": "core.transform",
                             "with": {"value": "{{ a.value + late.value + parallel.index }}"}},
                            {"id": "a", "type": "core.transform"},
                            {"id": "typo", "type": "core.transfrom"},
                        ],
                    },
                },
                {"id": "p", "type": "core.parallel", "with": {"count": 2}},
            ],
            ["a->l", "l->late"],
        ),
    )  # fmt: skip
    by_code = {(d.code, d.node, d.field) for d in found}
    assert ("not_upstream", "l.inner", "with.value") in by_code  # late is downstream of l
    assert ("unknown_reference", "l.inner", "with.value") in by_code  # parallel in a loop
    assert ("duplicate_id", "l.a", "id") in by_code
    assert ("unknown_node_type", "l.typo", "type") in by_code
    assert ("missing_field", "p", "body") in by_code
    assert any(d.code == "unknown_reference" and d.field == "with.while" for d in found)
