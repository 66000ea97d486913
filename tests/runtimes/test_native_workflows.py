"""Native nodes through real workflows: CSV files in and out, an out-of-tree PyO3 crate named by
a manifest, and errors that name the node and the line."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from polyhost import Host, HostConfig, RunStatus
from tests.helpers.workflows import workflow

pytestmark = pytest.mark.anyio


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    with (root / "sales.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "region", "amount"])
        for i in range(1, 301):
            writer.writerow([i, ["EU", "US", "APAC"][i % 3], i * 1.5])
    return root


@pytest.fixture
async def host(tmp_path: Path, data: Path) -> AsyncIterator[Host]:
    async with Host(HostConfig(home=tmp_path / "home", allowed_roots=[data])) as h:
        yield h


def expected_totals(path: Path) -> dict[str, tuple[float, int]]:
    totals: dict[str, tuple[float, int]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if float(row["amount"]) > 100:
                total, count = totals.get(row["region"], (0.0, 0))
                totals[row["region"]] = (total + float(row["amount"]), count + 1)
    return totals


async def test_query_to_a_file_then_read_it_back(host: Host, data: Path) -> None:
    wf = workflow(
        [
            {"id": "q", "type": "csv.query", "with": {
                "path": "sales.csv", "where": "amount > 100", "group_by": ["region"],
                "aggregate": {"total": {"op": "sum", "column": "amount"}, "n": {"op": "count"}},
                "order_by": ["region"], "output": {"path": "out/totals.csv", "format": "csv"}}},
            {"id": "back", "type": "csv.read", "with": {"path": "{{ q.path }}"}},
            {"id": "each", "type": "core.loop", "with": {"over": "{{ back.rows }}"},
             "body": {"nodes": [{"id": "fmt", "type": "core.transform",
                                 "with": {"value": "{{ loop.item.region }}={{ loop.item.n }}"}}],
                      "outputs": {"s": "{{ fmt.value }}"}}},
        ],
        ["q->back", "back->each"],
        outputs={"written": "{{ q.rows_written }}", "summary": "{{ each.results.map(r, r.s) }}"},
    )  # fmt: skip
    (data / "out").mkdir()
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED, result.error
    totals = expected_totals(data / "sales.csv")
    assert result.outputs == {
        "written": len(totals),
        "summary": [f"{region}={totals[region][1]}" for region in sorted(totals)],
    }
    rows = result.nodes["back"].output["rows"]
    assert {r["region"]: r["total"] for r in rows} == pytest.approx(
        {region: total for region, (total, _) in totals.items()}
    )


async def test_write_then_query_as_json_lines(host: Host, data: Path) -> None:
    wf = workflow(
        [
            {"id": "w", "type": "csv.write", "with": {
                "path": "new.csv", "rows": [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 5}]}},
            {"id": "q", "type": "csv.query", "with": {
                "path": "{{ w.path }}", "group_by": ["k"], "aggregate": {"s": {"op": "sum", "column": "v"}},
                "output": {"path": "agg.jsonl"}}},
        ],
        ["w->q"],
    )  # fmt: skip
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED, result.error
    lines = [json.loads(line) for line in (data / "agg.jsonl").read_text().splitlines()]
    assert lines == [{"k": "a", "s": 6}, {"k": "b", "s": 2}]


async def test_malformed_csv_names_the_node_and_the_line(host: Host, data: Path) -> None:
    (data / "bad.csv").write_text("a,b\n1,2\n3,4,5\n6,7\n")
    strict = workflow([{"id": "r", "type": "csv.read", "with": {"path": "bad.csv"}}])
    result = await host.run(strict)
    assert result.error["node"] == "r" and result.error["code"] == "csv_error"
    assert "line 3" in result.error["message"]
    lenient = workflow(
        [{"id": "r", "type": "csv.read", "with": {"path": "bad.csv", "lenient": True}}]
    )
    result = await host.run(lenient)
    assert result.status is RunStatus.COMPLETED
    assert result.nodes["r"].output["skipped"] == 1
    assert result.nodes["r"].output["rows"] == [{"a": 1, "b": 2}, {"a": 6, "b": 7}]


async def test_a_bad_predicate_is_a_parameter_error(host: Host) -> None:
    wf = workflow(
        [{"id": "q", "type": "csv.query", "with": {"path": "sales.csv", "where": "amout > 1"}}]
    )
    result = await host.run(wf)
    assert result.error["code"] == "invalid_parameters" and "amout" in result.error["message"]
    assert result.nodes["q"].error["field"] == "where"


async def test_an_out_of_tree_crate_named_by_a_manifest(host: Host, tmp_path: Path) -> None:
    manifest = tmp_path / "polyhost.toml"
    manifest.write_text(
        '[[nodes]]\ntype = "acme.words"\nruntime = "native"\n'
        'module = "polyhost_example_native"\nhandler = "word_count"\n'
    )
    host.catalog.load_manifest(manifest)
    wf = workflow(
        [
            {"id": "words", "type": "acme.words", "with": {"text": "one two  three\nfour"}},
            {"id": "stats", "type": "text.stats", "with": {"text": "b a b c b a", "top": 2}},
        ]
    )
    result = await host.run(wf)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs["words"] == {"words": 4}
    stats = result.outputs["stats"]
    assert stats["words"] == 6 and stats["top_words"] == [["b", 3], ["a", 2]]
