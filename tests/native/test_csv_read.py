"""csv.read: typed rows compared with Python's csv module, options, and malformed input."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polyhost import _native


def read(**params: Any) -> Any:
    return _native.call_native("csv.read", params, _native.CancelToken())


def failure(**params: Any) -> tuple[str, str, str | None]:
    with pytest.raises(_native.NativeNodeError) as info:
        read(**params)
    code, message, field = info.value.args
    return code, message, field


PARSERS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "bool": lambda t: t.lower() == "true",
    "string": str,
}


def typed(text: str, kind: str) -> Any:
    return None if text == "" else PARSERS[kind](text)


@pytest.fixture
def generated(tmp_path: Path) -> tuple[Path, list[list[str]]]:
    rng = random.Random(7)
    rows = [["id", "name", "score", "flag", "note"]]
    for i in range(2500):
        name = rng.choice(["ann", "bo, jr", 'say "hi"', "multi\nline", "zoë", ""])
        score = "" if rng.random() < 0.1 else f"{rng.uniform(-1e3, 1e3):.3f}"
        flag = rng.choice(["true", "false", "True", ""])
        rows.append([str(i), name, score, flag, rng.choice(["x", "y", ""])])
    path = tmp_path / "gen.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path, rows


def test_rows_match_the_csv_module(generated: tuple[Path, list[list[str]]]) -> None:
    path, rows = generated
    out = read(path=str(path))
    assert out["columns"] == rows[0]
    assert out["skipped"] == 0
    kinds = ["int", "string", "float", "bool", "string"]
    expected = [
        {name: typed(value, kind) for name, value, kind in zip(rows[0], row, kinds, strict=True)}
        for row in rows[1:]
    ]
    assert out["rows"] == expected


def test_limit_offset_and_declared_types(generated: tuple[Path, list[list[str]]]) -> None:
    path, rows = generated
    out = read(path=str(path), offset=10, limit=3, columns={"id": "string", "score": "float"})
    assert [r["id"] for r in out["rows"]] == [rows[11][0], rows[12][0], rows[13][0]]
    assert read(path=str(path), limit=0)["rows"] == []
    assert read(path=str(path), offset=10_000)["rows"] == []


def test_no_header_delimiter_quote_and_latin1(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_bytes("1;'a;''b'''\r\n2;caf\xe9\r\n".encode("latin-1"))
    out = read(path=str(path), header=False, delimiter=";", quote="'", encoding="latin-1")
    assert out["columns"] == ["c0", "c1"]
    assert out["rows"] == [{"c0": 1, "c1": "a;'b'"}, {"c0": 2, "c1": "café"}]


def test_inference_looks_at_the_first_1000_rows(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("n\n" + "1\n" * 1000 + "1.5\n")
    code, message, _ = failure(path=str(path))
    assert code == "csv_error"
    assert "line 1002, column 'n': expected int" in message
    assert "inferred from the first 1000 rows" in message
    assert read(path=str(path), columns={"n": "float"})["rows"][-1] == {"n": 1.5}
    assert read(path=str(path), lenient=True)["skipped"] == 1


def test_header_names_are_made_unique(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,a,,b\n1,2,3,4\n")
    assert read(path=str(path))["columns"] == ["a", "a_1", "c2", "b"]


@pytest.mark.parametrize(
    ("content", "line", "column", "detail"),
    [
        (b'a,b\n1,"x\ny"\n2\n', 4, "b", "expected 2 fields, found 1"),
        (b"a,b\n1,2\n3,4,5\n", 3, "b", "expected 2 fields, found 3"),
        (b"a,b\n1,ok\n2,\xff\n", 3, "b", "invalid UTF-8"),
        (b'a,b\n1,x\n2,"open\n3,y\n', 3, "b", "unterminated quoted field"),
        (b"a,b\r\n1,2\r\n\r\nx,3\r\n", 4, "a", 'expected int (declared in `columns`), found "x"'),
    ],
)
def test_malformed_rows_name_the_line_and_column(
    tmp_path: Path, content: bytes, line: int, column: str, detail: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, message, _ = failure(path=str(path), columns={"a": "int"})
    assert code == "csv_error"
    assert message.startswith(f"{path}: line {line}, column '{column}': ")
    assert detail in message
    out = read(path=str(path), columns={"a": "int"}, lenient=True)
    assert out["skipped"] == 1


def test_guards_and_parameter_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n" + "1\n" * 20)
    code, message, field = failure(path=str(path), max_rows=10)
    assert (code, field) == ("too_many_rows", "max_rows")
    assert "csv.query" in message and "output" in message
    assert failure(path="t.csv")[0] == "invalid_path"
    assert failure(path=str(tmp_path / "missing.csv"))[0] == "io_error"
    assert failure(path=str(path), delimiter=";;")[2] == "delimiter"
    assert failure(path=str(path), encoding="utf-16")[2] == "encoding"
    assert failure(path=str(path), columns={"a": "decimal"})[2] == "columns"
    assert failure(path=str(path), bogus=1)[2] == "bogus"


def test_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert read(path=str(path)) == {"rows": [], "columns": [], "skipped": 0}
    path.write_text("a,b\n")
    assert read(path=str(path)) == {"rows": [], "columns": ["a", "b"], "skipped": 0}
