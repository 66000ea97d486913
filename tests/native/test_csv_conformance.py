"""CSV parsing against cases from outside suites: csv-spectrum, rust-csv (csv-core) and
CPython's test_csv, each also checked against Python's csv module.

Every case is read by ``csv.read`` with no header and every column declared a string, so
the comparison is of the parsed fields alone. Two documented differences from the csv
module are applied to its answer: polyhost skips blank lines (the csv module yields ``[]``)
and reads an empty field as null (shown here as ``""``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from polyhost import _native

# (name, input, expected rows)
SPECTRUM: list[tuple[str, str, list[list[str]]]] = [
    (
        "comma_in_quotes",
        'first,last,address,city,zip\nJohn,Doe,120 any st.,"Anytown, WW",08123\n',
        [["first", "last", "address", "city", "zip"],
         ["John", "Doe", "120 any st.", "Anytown, WW", "08123"]],
    ),
    ("empty", 'a,b,c\n1,"",""\n2,3,4\n', [["a", "b", "c"], ["1", "", ""], ["2", "3", "4"]]),
    (
        "empty_crlf",
        'a,b,c\r\n1,"",""\r\n2,3,4\r\n',
        [["a", "b", "c"], ["1", "", ""], ["2", "3", "4"]],
    ),
    (
        "escaped_quotes",
        'a,b\n1,"ha ""ha"" ha"\n3,4\n',
        [["a", "b"], ["1", 'ha "ha" ha'], ["3", "4"]],
    ),
    (
        "json",
        'key,val\n1,"{""type"": ""Point"", ""coordinates"": [102.0, 0.5]}"\n',
        [["key", "val"], ["1", '{"type": "Point", "coordinates": [102.0, 0.5]}']],
    ),
    (
        "newlines",
        'a,b,c\n1,2,3\n"Once upon \na time",5,6\n7,8,9\n',
        [["a", "b", "c"], ["1", "2", "3"], ["Once upon \na time", "5", "6"], ["7", "8", "9"]],
    ),
    (
        "newlines_crlf",
        'a,b,c\r\n1,2,3\r\n"Once upon \r\na time",5,6\r\n7,8,9\r\n',
        [["a", "b", "c"], ["1", "2", "3"], ["Once upon \r\na time", "5", "6"],
         ["7", "8", "9"]],
    ),
    (
        "quotes_and_newlines",
        'a,b\n1,"ha \n""ha"" \nha"\n3,4\n',
        [["a", "b"], ["1", 'ha \n"ha" \nha'], ["3", "4"]],
    ),
    ("simple", "a,b,c\n1,2,3\n", [["a", "b", "c"], ["1", "2", "3"]]),
    ("simple_crlf", "a,b,c\r\n1,2,3\r\n", [["a", "b", "c"], ["1", "2", "3"]]),
    ("utf8", "a,b,c\n1,2,3\n4,5,ʤ\n", [["a", "b", "c"], ["1", "2", "3"], ["4", "5", "ʤ"]]),
]  # fmt: skip

RUST_CSV: list[tuple[str, str, list[list[str]]]] = [
    ("one_row_one_field", "a", [["a"]]),
    ("one_row_many_fields", 'a,"b",c', [["a", "b", "c"]]),
    ("one_row_trailing_comma", "a,b,", [["a", "b", ""]]),
    ("one_row_one_field_lf", "a\n", [["a"]]),
    ("one_row_many_fields_lf", 'a,"b",c\n', [["a", "b", "c"]]),
    ("one_row_trailing_comma_lf", "a,b,\n", [["a", "b", ""]]),
    ("one_row_one_field_crlf", "a\r\n", [["a"]]),
    ("one_row_many_fields_crlf", 'a,"b",c\r\n', [["a", "b", "c"]]),
    ("one_row_one_field_cr", "a\r", [["a"]]),
    ("one_row_many_fields_cr", 'a,"b",c\r', [["a", "b", "c"]]),
    ("one_row_trailing_comma_cr", "a,b,\r", [["a", "b", ""]]),
    ("many_rows_one_field", "a\nb", [["a"], ["b"]]),
    ("many_rows_many_fields", 'a,b,c\nx,y,z', [["a", "b", "c"], ["x", "y", "z"]]),
    ("many_rows_one_field_crlf", "a\r\nb\r\n", [["a"], ["b"]]),
    ("many_rows_one_field_cr", "a\rb\r", [["a"], ["b"]]),
    ("many_rows_many_fields_cr", "a,b,c\rx,y,z\r", [["a", "b", "c"], ["x", "y", "z"]]),
    ("trailing_lines_no_record", "\n\n\na,b,c\nx,y,z\n\n\n", [["a", "b", "c"], ["x", "y", "z"]]),
    ("trailing_lines_no_record_cr", "\r\r\ra,b,c\rx,y,z\r\r\r", [["a", "b", "c"], ["x", "y", "z"]]),
    (
        "trailing_lines_no_record_crlf",
        "\r\n\r\n\r\na,b,c\r\nx,y,z\r\n\r\n\r\n",
        [["a", "b", "c"], ["x", "y", "z"]],
    ),
    ("empty", "", []),
    ("empty_lines", "\n\n\n\n", []),
    (
        "empty_lines_interspersed",
        "\n\na,b\n\n\nx,y\n\n\nm,n\n",
        [["a", "b"], ["x", "y"], ["m", "n"]],
    ),
    (
        "empty_lines_interspersed_crlf",
        "\r\n\r\na,b\r\n\r\n\r\nx,y\r\n\r\n\r\nm,n\r\n",
        [["a", "b"], ["x", "y"], ["m", "n"]],
    ),
    (
        "empty_lines_interspersed_cr",
        "\r\ra,b\r\r\rx,y\r\r\rm,n\r",
        [["a", "b"], ["x", "y"], ["m", "n"]],
    ),
    ("quote_lf", '""\n', [[""]]),
    ("quote_cr", '""\r', [[""]]),
    ("quote_crlf", '""\r\n', [[""]]),
    ("quote_space", '"" ', [[" "]]),
    ("quote_inner_space", '" "', [[" "]]),
    ("quote_outer_space", ' "" ', [[' "" ']]),
    ("quoted_line_breaks", '"a\nb","c\r\nd","e\rf"\n', [["a\nb", "c\r\nd", "e\rf"]]),
    ("mixed_line_endings", "a,b\n1,2\r\n3,4\r5,6\n", [["a", "b"], ["1", "2"], ["3", "4"], ["5", "6"]]),
]  # fmt: skip

CPYTHON: list[tuple[str, str, list[list[str]]]] = [
    ("read_eol_cr", "a,b\r", [["a", "b"]]),
    ("read_eol_lf", "a,b\n", [["a", "b"]]),
    ("read_eol_crlf", "a,b\r\n", [["a", "b"]]),
    ("read_eol_bare_cr_between_rows", "a,b\r1,2\r", [["a", "b"], ["1", "2"]]),
    ("read_quoting", '1,",3,",5', [["1", ",3,", "5"]]),
    ("read_quoting_doubled", '"a""b",c', [['a"b', "c"]]),
    ("read_quoting_empty", '"",""', [["", ""]]),
    (
        "quoted_quote",
        '1,2,3,"""I see,"" said the blind man","as he picked up his hammer and saw"\r\n',
        [["1", "2", "3", '"I see," said the blind man', "as he picked up his hammer and saw"]],
    ),
    (
        "quoted_nl",
        '1,2,3,"""I see,""\nsaid the blind man","as he picked up his\nhammer and saw"\n'
        "9,8,7,6,5",
        [["1", "2", "3", '"I see,"\nsaid the blind man', "as he picked up his\nhammer and saw"],
         ["9", "8", "7", "6", "5"]],
    ),
    ("read_linenum_like", 'line,1\n"line,2\nline,3",x\nline,4', [["line", "1"], ["line,2\nline,3", "x"], ["line", "4"]]),
    ("space_after_quote", '"a" ,b', [["a ", "b"]]),
    ("quote_mid_field", 'a"b,c', [['a"b', "c"]]),
    ("utf8_bom_like_text", "\u00e9,\u00fc\n\u4e2d,\U0001f600\n", [["é", "ü"], ["中", "😀"]]),
]  # fmt: skip

CASES = [
    pytest.param(text, rows, id=f"{suite}-{name}")
    for suite, cases in (("spectrum", SPECTRUM), ("rust-csv", RUST_CSV), ("cpython", CPYTHON))
    for name, text, rows in cases
]


def read_all(path: Path, width: int) -> list[list[str]]:
    columns = {f"c{i}": "string" for i in range(width)}
    out: Any = _native.call_native(
        "csv.read",
        {"path": str(path), "header": False, "columns": columns},
        _native.CancelToken(),
    )
    return [
        ["" if row[f"c{i}"] is None else row[f"c{i}"] for i in range(width)] for row in out["rows"]
    ]


def python_csv(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_case(tmp_path: Path, text: str, expected: list[list[str]]) -> None:
    path = tmp_path / "case.csv"
    path.write_bytes(text.encode("utf-8"))
    assert python_csv(text) == expected  # the csv module agrees with the suite
    if expected:
        assert read_all(path, len(expected[0])) == expected
    else:
        out = _native.call_native(
            "csv.read", {"path": str(path), "header": False}, _native.CancelToken()
        )
        assert out["rows"] == []


def failure(path: Path, **params: Any) -> tuple[str, str, str | None]:
    with pytest.raises(_native.NativeNodeError) as info:
        _native.call_native("csv.read", {"path": str(path), **params}, _native.CancelToken())
    code, message, field = info.value.args
    return code, message, field


def test_an_unterminated_quote_in_the_first_data_row_names_that_row(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text('a,b\n1,"oops\n2,3\n')
    code, message, _ = failure(path)
    assert code == "csv_error"
    assert "line 2" in message and "column 'b'" in message, message
    assert "data row" in message and "header" not in message, message


def test_an_unterminated_quote_in_the_header_says_so(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text('a,"b\n1,2\n')
    code, message, _ = failure(path)
    assert code == "csv_error"
    assert "line 1" in message and "header" in message, message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a,b\r1,2\r3\r4,5\r", 3),
        ("a,b\r\n1,2\n3,4\r5\r\n", 4),
        ('a,b\r"x\ry",2\r3\r', 4),
    ],
    ids=["cr", "mixed", "cr-inside-quotes"],
)
def test_line_numbers_count_every_kind_of_line_break(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(text, newline="")
    code, message, _ = failure(path)
    assert code == "csv_error"
    assert f"line {line}," in message, message
