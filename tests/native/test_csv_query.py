"""csv.query: results compared with the same query done with Python's csv module."""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polyhost import _native

Row = dict[str, Any]
REGIONS = ["north", "south", "east", "west", "o'hare", ""]
PRODUCTS = ["apple", "pear", "fig", "kiwi, gold"]


def query(**params: Any) -> Any:
    return _native.call_native("csv.query", params, _native.CancelToken())


def failure(**params: Any) -> tuple[str, str, str | None]:
    with pytest.raises(_native.NativeNodeError) as info:
        query(**params)
    code, message, field = info.value.args
    return code, message, field


def write_rows(path: Path, rows: int, seed: int, multiline: bool = False) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "region", "product", "qty", "price", "ok"])
        for i in range(rows):
            product = rng.choice(PRODUCTS)
            if multiline and rng.random() < 0.01:
                product = "two\nlines"
            out.writerow(
                [
                    i,
                    rng.choice(REGIONS),
                    product,
                    "" if rng.random() < 0.05 else rng.randrange(-50, 500),
                    "" if rng.random() < 0.05 else f"{rng.uniform(0, 100):.2f}",
                    rng.choice(["true", "false", ""]),
                ]
            )


def load(path: Path) -> list[Row]:
    """The file as typed rows, the way the node infers them."""
    kinds: dict[str, Callable[[str], Any]] = {
        "id": int,
        "qty": int,
        "price": float,
        "ok": lambda t: t == "true",
    }
    with path.open(newline="", encoding="utf-8") as f:
        return [
            {k: (None if v == "" else kinds.get(k, str)(v)) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Row]]:
    path = tmp_path_factory.mktemp("query") / "sales.csv"
    write_rows(path, 4000, seed=11)
    return path, load(path)


def above(value: Any, bound: float) -> bool:
    return value is not None and value > bound


PREDICATES: list[tuple[str, Callable[[Row], bool]]] = [
    ("qty > 100", lambda r: above(r["qty"], 100)),
    (
        "price <= 12.5 and region = 'north'",
        lambda r: r["price"] is not None and r["price"] <= 12.5 and r["region"] == "north",
    ),
    (
        "region in ('east', \"o'hare\") or qty is null",
        lambda r: r["region"] in ("east", "o'hare") or r["qty"] is None,
    ),
    (
        "not (qty < 0) and ok = false",
        lambda r: r["qty"] is not None and r["qty"] >= 0 and r["ok"] is False,
    ),
    ("region is null", lambda r: r["region"] is None),
    (
        "product not in ('apple', 'kiwi, gold')",
        lambda r: r["product"] not in ("apple", "kiwi, gold"),
    ),
    ("150 <= qty and qty < 160.5", lambda r: r["qty"] is not None and 150 <= r["qty"] < 160.5),
    ("region >= 'south'", lambda r: r["region"] is not None and r["region"] >= "south"),
    ("ok != null and price > 99", lambda r: r["ok"] is not None and above(r["price"], 99)),
    # Three-valued logic: a test on a null is unknown, and `not unknown` is unknown.
    ("not (qty > 100)", lambda r: r["qty"] is not None and not r["qty"] > 100),
]


@pytest.mark.parametrize(("where", "predicate"), PREDICATES, ids=[p for p, _ in PREDICATES])
def test_filters_match_python(
    dataset: tuple[Path, list[Row]], where: str, predicate: Callable[[Row], bool]
) -> None:
    path, rows = dataset
    out = query(path=str(path), where=where, select=["id"])
    expected = [r["id"] for r in rows if predicate(r)]
    assert [r["id"] for r in out["rows"]] == expected
    assert out["rows_scanned"] == len(rows)
    assert out["rows_matched"] == len(expected)
    assert out["columns"] == ["id"]


def reference_groups(rows: list[Row], keys: list[str], column: str) -> dict[tuple[Any, ...], Row]:
    groups: dict[tuple[Any, ...], Row] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        g = groups.setdefault(key, {"n": 0, "values": []})
        g["n"] += 1
        if r[column] is not None:
            g["values"].append(r[column])
    return groups


def test_group_by_and_aggregates_match_python(dataset: tuple[Path, list[Row]]) -> None:
    path, rows = dataset
    out = query(
        path=str(path),
        where="qty >= 0",
        group_by=["region", "ok"],
        aggregate={
            "n": {"op": "count"},
            "priced": {"op": "count", "column": "price"},
            "total": {"op": "sum", "column": "price"},
            "low": {"op": "min", "column": "price"},
            "high": {"op": "max", "column": "product"},
            "avg": {"op": "mean", "column": "price"},
        },
    )
    assert out["columns"] == ["region", "ok", "n", "priced", "total", "low", "high", "avg"]
    kept = [r for r in rows if r["qty"] is not None and r["qty"] >= 0]
    groups = reference_groups(kept, ["region", "ok"], "price")
    # Groups come in order of first appearance.
    assert [(r["region"], r["ok"]) for r in out["rows"]] == list(groups)
    for row in out["rows"]:
        members = [r for r in kept if (r["region"], r["ok"]) == (row["region"], row["ok"])]
        values = groups[(row["region"], row["ok"])]["values"]
        assert row["n"] == len(members)
        assert row["priced"] == len(values)
        assert row["total"] == pytest.approx(math.fsum(values))
        assert row["low"] == min(values)
        assert row["high"] == max(r["product"] for r in members)
        assert row["avg"] == pytest.approx(math.fsum(values) / len(values))


def test_order_by_and_limit_on_groups(dataset: tuple[Path, list[Row]]) -> None:
    path, rows = dataset
    out = query(
        path=str(path),
        group_by=["product"],
        aggregate={"qty": {"op": "sum", "column": "qty"}},
        order_by=["-qty"],
        limit=2,
        select=["qty", "product"],
    )
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["product"]] = totals.get(r["product"], 0) + (r["qty"] or 0)
    best = sorted(totals.items(), key=lambda kv: -kv[1])[:2]
    assert out["rows"] == [{"qty": q, "product": p} for p, q in best]
    assert out["columns"] == ["qty", "product"]


def test_aggregates_without_groups(dataset: tuple[Path, list[Row]]) -> None:
    path, rows = dataset
    out = query(
        path=str(path),
        where="region = 'west'",
        aggregate={"n": {"op": "count"}, "qty": {"op": "sum", "column": "qty"}},
    )
    west = [r for r in rows if r["region"] == "west"]
    assert out["rows"] == [{"n": len(west), "qty": sum(r["qty"] or 0 for r in west)}]


def sort_key(value: Any, descending: bool) -> tuple[int, Any]:
    # Nulls last in both directions.
    if value is None:
        return (1, 0)
    return (0, -value if descending else value)


@pytest.mark.parametrize("limit", [None, 1, 25])
def test_order_by_rows_nulls_last(dataset: tuple[Path, list[Row]], limit: int | None) -> None:
    path, rows = dataset
    params: dict[str, Any] = {
        "path": str(path),
        "select": ["id", "qty"],
        "order_by": ["-qty", "id"],
    }
    if limit is not None:
        params["limit"] = limit
    out = query(**params)
    expected = sorted(rows, key=lambda r: (sort_key(r["qty"], True), r["id"]))[:limit]
    assert out["rows"] == [{"id": r["id"], "qty": r["qty"]} for r in expected]


def test_unordered_limit_stops_early(dataset: tuple[Path, list[Row]]) -> None:
    path, rows = dataset
    out = query(path=str(path), where="qty > 400", limit=3)
    expected = [r for r in rows if r["qty"] is not None and r["qty"] > 400][:3]
    assert out["rows"] == expected
    assert out["rows_matched"] == 3
    assert out["rows_scanned"] < len(rows)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_output_files(dataset: tuple[Path, list[Row]], tmp_path: Path, fmt: str) -> None:
    path, rows = dataset
    target = tmp_path / f"out.{fmt}"
    out = query(
        path=str(path),
        where="price > 90",
        select=["id", "region", "price"],
        output={"path": str(target), "format": fmt},
    )
    expected = [
        {"id": r["id"], "region": r["region"], "price": r["price"]}
        for r in rows
        if r["price"] is not None and r["price"] > 90
    ]
    assert out["rows_written"] == len(expected)
    assert out["path"] == str(target)
    assert "rows" not in out
    if fmt == "jsonl":
        written = [json.loads(line) for line in target.read_text().splitlines()]
    else:
        written = load(target)
    assert written == expected


def test_large_files_with_quoted_line_breaks(tmp_path: Path) -> None:
    # Big enough to be read as two ranges on two cores; line breaks inside quoted fields
    # make some range starts wrong guesses, which must not change the answer.
    path = tmp_path / "large.csv"
    write_rows(path, 260_000, seed=3, multiline=True)
    assert path.stat().st_size > 8 * 1024 * 1024
    out = query(
        path=str(path),
        where="qty > 10",
        group_by=["product"],
        aggregate={"n": {"op": "count"}, "qty": {"op": "sum", "column": "qty"}},
    )
    rows = load(path)
    expected: dict[str, list[int]] = {}
    for r in rows:
        if r["qty"] is not None and r["qty"] > 10:
            e = expected.setdefault(r["product"], [0, 0])
            e[0] += 1
            e[1] += r["qty"]
    assert out["rows"] == [{"product": p, "n": n, "qty": q} for p, (n, q) in expected.items()]
    assert out["rows_scanned"] == len(rows)


def test_malformed_rows_in_a_large_file_report_the_true_line(tmp_path: Path) -> None:
    path = tmp_path / "large_bad.csv"
    line = "1,north,apple,5,1.5,true\n"
    rows = 400_000
    bad_at = 350_000
    with path.open("w") as f:
        f.write("id,region,product,qty,price,ok\n")
        f.write(line * bad_at)
        f.write("1,north,apple,5\n")
        f.write(line * (rows - bad_at - 1))
    code, message, _ = failure(
        path=str(path), group_by=["region"], aggregate={"n": {"op": "count"}}
    )
    assert code == "csv_error"
    assert f"line {bad_at + 2}, column 'price'" in message
    out = query(path=str(path), group_by=["region"], aggregate={"n": {"op": "count"}}, lenient=True)
    assert out["rows"] == [{"region": "north", "n": rows - 1}]
    assert (out["skipped"], out["rows_scanned"]) == (1, rows)


@pytest.mark.parametrize(
    ("params", "field", "text"),
    [
        ({"where": "qty > 1 and pricee < 2"}, "where", "'pricee'"),
        ({"where": "qty > 1 and"}, "where", "position 12"),
        ({"where": "region > 3"}, "where", "quote the literal"),
        ({"select": ["nope"]}, "select", "'nope'"),
        ({"group_by": ["nope"]}, "group_by", "'nope'"),
        ({"aggregate": {"s": {"op": "sum", "column": "region"}}}, "aggregate", "not a number"),
        ({"aggregate": {"s": {"op": "sum"}}}, "aggregate", "needs a `column`"),
        ({"group_by": ["region"], "order_by": ["qty"]}, "order_by", "'qty'"),
        ({"output": {"path": "out.csv"}}, "output", "absolute"),
        ({"output": {"path": "/tmp/x", "format": "xml"}}, "output", "xml"),
        ({"limit": -1}, "limit", "non-negative"),
    ],
)
def test_parameter_errors_name_the_field(
    dataset: tuple[Path, list[Row]], params: dict[str, Any], field: str, text: str
) -> None:
    path, _ = dataset
    code, message, got = failure(path=str(path), **params)
    assert code in {"invalid_parameters", "invalid_path"}
    assert got == field
    assert text in message


def test_too_many_rows_inline(dataset: tuple[Path, list[Row]]) -> None:
    path, _ = dataset
    code, message, field = failure(path=str(path), max_rows=100)
    assert (code, field) == ("too_many_rows", "max_rows")
    assert "output" in message
    assert len(query(path=str(path), max_rows=100, limit=100)["rows"]) == 100
