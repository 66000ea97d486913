"""A small csv.aggregate for the format's example: group by columns, sum others."""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any


def aggregate(params: dict[str, Any]) -> dict[str, Any]:
    group_by: list[str] = params["group_by"]
    sums: list[str] = params.get("sum", [])
    totals: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    with open(params["path"], newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = tuple(row[column] for column in group_by)
            for column in sums:
                totals[key][column] += float(row[column])
    rows = []
    for key, values in sorted(totals.items()):
        entry: dict[str, Any] = dict(zip(group_by, key, strict=True))
        entry.update(values)
        entry["sum"] = sum(values.values())
        rows.append(entry)
    return {"rows": rows}
