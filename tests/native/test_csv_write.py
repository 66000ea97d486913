"""csv.write: rows to CSV, read back with Python's csv module and with csv.read."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from polyhost import _native


def call(name: str, **params: Any) -> Any:
    return _native.call_native(name, params, _native.CancelToken())


def failure(**params: Any) -> tuple[str, str, str | None]:
    with pytest.raises(_native.NativeNodeError) as info:
        call("csv.write", **params)
    code, message, field = info.value.args
    return code, message, field


def read_back(path: Path, delimiter: str = ",") -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter=delimiter))


def test_columns_follow_first_appearance_and_values_are_quoted(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    rows = [
        {"name": 'say "hi", then\nleave', "n": 1},
        {"n": 2.5, "flag": True, "name": "zoë"},
        {"extra": None, "nested": {"a": [1, 2]}},
    ]
    out = call("csv.write", path=str(path), rows=rows)
    assert out == {"rows_written": 3, "path": str(path)}
    assert read_back(path) == [
        ["name", "n", "flag", "extra", "nested"],
        ['say "hi", then\nleave', "1", "", "", ""],
        ["zoë", "2.5", "true", "", ""],
        ["", "", "", "", '{"a":[1,2]}'],
    ]
    back = call("csv.read", path=str(path))
    assert back["rows"][1] == {"name": "zoë", "n": 2.5, "flag": True, "extra": None, "nested": None}


def test_explicit_columns_and_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    call(
        "csv.write",
        path=str(path),
        rows=[{"a": 1, "b": 2, "c": 3}],
        columns=["c", "a"],
        delimiter=";",
    )
    assert path.read_text() == "c;a\n3;1\n"


def test_append_follows_the_existing_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    call("csv.write", path=str(path), rows=[{"a": 1, "b": "x"}], append=True)
    call("csv.write", path=str(path), rows=[{"b": "y", "a": 2}, {"a": 3}], append=True)
    assert read_back(path) == [["a", "b"], ["1", "x"], ["2", "y"], ["3", ""]]
    code, message, field = failure(path=str(path), rows=[{"c": 1}], append=True)
    assert (code, field) == ("invalid_parameters", "rows")
    assert "'c'" in message
    assert failure(path=str(path), rows=[], columns=["b", "a"], append=True)[2] == "columns"
    # A file whose last line has no line break gets one before the new rows.
    path.write_text("a,b\n1,x")
    call("csv.write", path=str(path), rows=[{"a": 2, "b": "y"}], append=True)
    assert path.read_text() == "a,b\n1,x\n2,y\n"


def test_replacing_a_file_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    call("csv.write", path=str(path), rows=[{"new": 1}])
    assert path.read_text() == "new\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_empty_rows_write_a_header_only_when_columns_are_known(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert call("csv.write", path=str(path), rows=[], columns=["a", "b"])["rows_written"] == 0
    assert path.read_text() == "a,b\n"


def test_parameter_errors(tmp_path: Path) -> None:
    assert failure(path="out.csv", rows=[])[0] == "invalid_path"
    assert failure(path=str(tmp_path / "o.csv"), rows=[1])[2] == "rows"
    assert failure(path=str(tmp_path / "o.csv"), rows="x")[2] == "rows"
    assert failure(path=str(tmp_path / "o.csv"))[2] == "rows"
    assert failure(path=str(tmp_path / "no" / "dir" / "o.csv"), rows=[])[0] == "io_error"
