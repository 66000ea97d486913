"""JSON Schema as polyhost runs it: ECMA-262 patterns in linear time, local refs only,
defaults checked, the common formats checked, and validation bounded."""

from __future__ import annotations

import time
from typing import Any

import pytest

from polyhost import Catalog, CompileError, Diagnostic, InputError
from polyhost._errors import LimitExceededError
from polyhost._limits import Limits
from polyhost._native import Pattern, PatternError
from polyhost.compile._checker import compile_workflow
from polyhost.compile._inputs import InputsSchema
from polyhost.compile._parsing import parse_workflow
from polyhost.compile._schema import (
    CHECKED_FORMATS,
    InvalidSchemaError,
    schema_errors,
    schema_problems,
    validator_for,
)
from tests.helpers.workflows import doc


def compile_errors(catalog: Catalog, inputs: dict[str, Any]) -> list[Diagnostic]:
    document = doc([{"id": "a", "type": "core.log", "with": {"message": "x"}}])
    document["inputs"] = inputs
    with pytest.raises(CompileError) as info:
        compile_workflow(parse_workflow(document), catalog)
    return [d for d in info.value.diagnostics if d.severity == "error"]


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


# patterns ----------------------------------------------------------------------------------


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    inputs = InputsSchema(obj(s={"type": "string", "pattern": "^(a+)+$"}))
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        inputs.prepare({"s": "a" * 100_000 + "!"})
    assert time.perf_counter() - start < 1.0
    assert info.value.field == "s"
    assert inputs.prepare({"s": "a" * 100_000}) == {"s": "a" * 100_000}


def test_ecma_262_unicode_properties_and_ascii_shorthands() -> None:
    inputs = InputsSchema(
        obj(
            name={"type": "string", "pattern": r"^\p{Letter}+$"},
            code={"type": "string", "pattern": r"^\d+$"},
            line={"type": "string", "pattern": "^abc$"},
        )
    )
    assert inputs.prepare({"name": "école"})["name"] == "école"
    with pytest.raises(InputError, match="name"):
        inputs.prepare({"name": "ab1"})
    # ECMA-262 \d is ASCII: Bengali digits are not \d; `$` does not match before a final "\n".
    with pytest.raises(InputError, match="code"):
        inputs.prepare({"code": "\u09ea\u09e8"})
    with pytest.raises(InputError, match="line"):
        inputs.prepare({"line": "abc\n"})


def test_pattern_properties_and_additional_properties_use_the_same_engine() -> None:
    schema = {
        "type": "object",
        "patternProperties": {r"^\p{Lu}": {"type": "integer"}},
        "additionalProperties": False,
    }
    inputs = InputsSchema(schema)
    assert inputs.prepare({"Élan": 1}) == {"Élan": 1}
    with pytest.raises(InputError, match="additional properties"):
        inputs.prepare({"élan": 1})
    with pytest.raises(InputError):
        inputs.prepare({"Élan": "one"})


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        (r"(a)\1", "backreference"),
        (r"(?<n>a)\k<n>", "named backreference"),
        ("a(?=b)", "lookahead"),
        ("(?<!a)b", "lookbehind"),
        ("(a", "unclosed group"),
        (r"\a", "invalid escape"),
    ],
)
def test_a_pattern_the_engine_cannot_run_is_a_diagnostic_naming_its_path(
    catalog: Catalog, pattern: str, says: str
) -> None:
    found = compile_errors(catalog, obj(code={"type": "string", "pattern": pattern}))
    assert [(d.code, d.field) for d in found] == [
        ("invalid_inputs_schema", "inputs.properties.code.pattern")
    ]
    assert says in found[0].message


def test_a_pattern_properties_key_is_checked_too(catalog: Catalog) -> None:
    found = compile_errors(catalog, {"type": "object", "patternProperties": {"(?=x)": {}}})
    assert found[0].field == "inputs.patternProperties.(?=x)"


def test_a_pattern_too_large_to_compile_is_a_limit(catalog: Catalog) -> None:
    found = compile_errors(catalog, obj(s={"type": "string", "pattern": r"(?:\p{L}{100}){100}"}))
    assert [(d.code, d.field) for d in found] == [("limit_exceeded", "inputs.properties.s.pattern")]
    assert "max_schema_pattern_bytes" in found[0].message
    with pytest.raises(PatternError, match="bytes"):
        Pattern(r"\p{L}{1000}", 64 * 1024)


# references --------------------------------------------------------------------------------


def test_a_remote_ref_is_refused_at_compile_time_and_never_fetched(catalog: Catalog) -> None:
    found = compile_errors(
        catalog,
        obj(
            a={"$ref": "http://127.0.0.1:9/schema.json"},
            b={"$ref": "#/$defs/missing"},
            c={"$ref": "other.json#/x"},
        ),
    )
    assert sorted((d.code, d.field) for d in found) == [
        ("invalid_inputs_schema", "inputs.properties.a.$ref"),
        ("invalid_inputs_schema", "inputs.properties.b.$ref"),
        ("invalid_inputs_schema", "inputs.properties.c.$ref"),
    ]
    assert all("nothing is ever fetched" in d.message for d in found)


def test_local_refs_anchors_and_embedded_ids_resolve() -> None:
    schema = {
        "$id": "https://example.com/root.json",
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/positive"},
            "b": {"$ref": "#word"},
            "c": {"$ref": "https://example.com/embedded.json"},
            "d": {"$ref": "embedded.json"},
        },
        "$defs": {
            "positive": {"type": "integer", "minimum": 1},
            "word": {"$anchor": "word", "type": "string"},
            "embedded": {"$id": "embedded.json", "type": "boolean"},
        },
    }
    assert schema_problems(schema) == []
    inputs = InputsSchema(schema)
    assert inputs.prepare({"a": 2, "b": "x", "c": True, "d": False})
    with pytest.raises(InputError, match="'a'"):
        inputs.prepare({"a": 0})


def test_a_ref_loop_at_run_time_is_a_typed_error_not_a_crash() -> None:
    with pytest.raises(InvalidSchemaError, match="recursed too deep"):
        schema_errors(validator_for({"$ref": "#"}), 1)


# defaults ----------------------------------------------------------------------------------


def test_every_default_is_checked_against_its_own_subschema(catalog: Catalog) -> None:
    found = compile_errors(
        catalog,
        {
            "type": "object",
            "properties": {
                "count": {"type": "integer", "default": "ten"},
                "when": {
                    "type": "object",
                    "properties": {
                        "day": {"type": "string", "format": "date", "default": "2023-02-29"}
                    },
                },
            },
            "$defs": {"unused": {"type": "string", "maxLength": 2, "default": "long"}},
        },
    )
    assert sorted(d.field for d in found) == [
        "inputs.$defs.unused.default",
        "inputs.properties.count.default",
        "inputs.properties.when.properties.day.default",
    ]
    assert all(d.code == "invalid_inputs_schema" for d in found)
    assert any("'ten'" in d.message and "integer" in d.message for d in found)


def test_at_run_time_a_problem_that_comes_of_a_default_says_so() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer", "default": 1}, "b": {"type": "integer"}},
        "dependentRequired": {"a": ["b"]},
    }
    inputs = InputsSchema(schema)
    assert inputs.problems == []
    with pytest.raises(InputError, match="after the defaults for a"):
        inputs.prepare({})


# formats -----------------------------------------------------------------------------------

FORMAT_CASES: dict[str, tuple[list[str], list[str]]] = {
    "date-time": (
        ["1963-06-19T08:30:06.283185Z", "1990-12-31T15:59:60-08:00", "2020-01-01t00:00:00z"],
        ["1990-02-31T15:59:59Z", "1998-12-31T23:59:60+01:00", "2020-01-01 00:00:00Z", "1"],
    ),
    "date": (["2020-02-29"], ["2021-02-29", "2020-1-01", "2020-01-0\u0661"]),
    "time": (["08:30:06Z", "23:59:60Z", "01:29:60+01:30"], ["24:00:00Z", "08:30:06", "22:59:60Z"]),
    "duration": (["P4DT12H30M5S", "PT1S", "P2W"], ["P", "PT", "P1D2H", "P2W1D"]),
    "email": (
        ['"joe bloggs"@l33t.com', "te~st@example.com", "joe@[IPv6:::1]"],
        ["2962", ".test@example.com", "te..st@example.com", "a@-example.com"],
    ),
    "hostname": (
        ["www.example.com", "xn--4gbwdl.xn--wgbh1c", "a" * 63],
        ["-a.com", "a" * 64, "example.", "xn--X", "ab--cd", "a_b.com"],
    ),
    "ipv4": (["192.168.0.1"], ["256.0.0.1", "087.10.0.1", "1.2.3", "1.2.3.\u0662"]),
    "ipv6": (["::1", "::ffff:192.168.0.1"], ["12345::", "fe80::1%eth0", "::\u0661"]),
    "uri": (
        ["http://[2001:db8::7]/c=GB?one?one", "urn:isbn:0451450523", "mailto:a@b.c"],
        ["//example.com", "abc", "http:// shouting.com", "http://[@example.org/a", "ht,tp://x"],
    ),
    "uri-reference": (["//example.com/a", "#frag", "../x?y"], ["\\\\WINDOWS\\share", "#f#g"]),
    "uuid": (["2EB8AA08-AA98-11EA-B4AA-73B441D16380"], ["2eb8aa08-aa98-11ea-b4aa-73b441d1638"]),
    "json-pointer": (["/foo/0", "/a~1b", ""], ["/foo~2", "foo"]),
    "regex": ([r"^\p{L}+$"], [r"(a)\1", "^(abc]"]),
}


@pytest.mark.parametrize("name", sorted(FORMAT_CASES))
def test_the_common_formats_are_always_checked(name: str) -> None:
    valid, invalid = FORMAT_CASES[name]
    validator = validator_for({"format": name})
    for value in valid:
        assert schema_errors(validator, value) == [], (name, value)
    for value in invalid:
        assert schema_errors(validator, value), (name, value)
    assert schema_errors(validator, 12) == []  # formats apply to strings only


def test_the_checked_formats_are_the_documented_ones() -> None:
    assert set(CHECKED_FORMATS) == set(FORMAT_CASES)
    # Any other format is an annotation.
    assert schema_errors(validator_for({"format": "iri"}), "not an iri at all") == []


# bounds ------------------------------------------------------------------------------------


def test_unique_items_on_a_large_array_is_linear() -> None:
    validator = validator_for({"type": "array", "uniqueItems": True})
    items: list[Any] = [{"k": i, "v": [i, {"x": i}]} for i in range(10_000)]
    start = time.perf_counter()
    assert schema_errors(validator, items) == []
    errors = schema_errors(validator, [*items, {"v": [0, {"x": 0}], "k": 0.0}])
    # Pairwise comparison of 10,000 objects takes minutes; hashing, well under a second.
    assert time.perf_counter() - start < 5.0
    assert [e.message for e in errors] == ["items 0 and 10000 are equal, but must be unique"]
    # JSON Schema equality: 1 and 1.0 are equal, true and 1 are not.
    assert schema_errors(validator, [1, 1.0])
    assert schema_errors(validator, [True, 1]) == []


def test_schema_work_is_bounded_by_max_schema_steps() -> None:
    # Each level doubles the work: 2**30 evaluations without a bound.
    defs: dict[str, Any] = {
        f"l{i}": {"allOf": [{"$ref": f"#/$defs/l{i + 1}"}, {"$ref": f"#/$defs/l{i + 1}"}]}
        for i in range(30)
    }
    defs["l30"] = {"type": "integer"}
    schema = {"type": "object", "properties": {"n": {"$ref": "#/$defs/l0"}}, "$defs": defs}
    limits = Limits(max_schema_steps=20_000)
    inputs = InputsSchema(schema, limits)
    start = time.perf_counter()
    with pytest.raises(InputError, match="max_schema_steps"):
        inputs.prepare({"n": 1}, limits)
    assert time.perf_counter() - start < 5.0
    with pytest.raises(LimitExceededError) as info:
        schema_errors(validator_for(schema), {"n": 1}, limits)
    assert info.value.limit == "max_schema_steps"


def test_a_long_string_against_a_pattern_needs_no_length_bound() -> None:
    validator = validator_for({"type": "string", "pattern": r"^(\w+\s?)*$"})
    start = time.perf_counter()
    assert schema_errors(validator, "word " * 1_000_000 + "!")
    assert time.perf_counter() - start < 1.0
