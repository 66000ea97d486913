"""Hostile runs through the real command: each ends failed, recorded, with the node named.

For every run below, `polyhost run --json` exits 1 with one JSON object that carries the run's
real id and an error naming the node, and `polyhost runs show ID --json` says the run ended: the
process that executed it never leaves it `running`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Polyhost

_NODES = """\
import os
import sqlite3
from pathlib import Path


def surrogate(params, ctx):
    return {"text": "a\\ud83d"}


def deep(params, ctx):
    value = []
    for _ in range(100_000):
        value = [value]
    return {"value": value}


def not_a_number(params, ctx):
    return {"ratio": float("nan")}


def interrupt(params, ctx):
    raise KeyboardInterrupt


def exits(params, ctx):
    raise SystemExit(3)


def bad_message(params, ctx):
    ctx.log("half a pair: \\ud800")
    raise ValueError("broken \\udc00 text")


def sabotage(params, ctx):
    # The store refuses the next write of node `victim`, as a failing disk would.
    db = Path(os.environ["POLYHOST_HOME"]) / "polyhost.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON node_results WHEN NEW.node_id = 'victim' "
            "BEGIN SELECT RAISE(ABORT, 'the disk refuses'); END"
        )
    return {}
"""

_HANDLERS = ("surrogate", "deep", "not_a_number", "interrupt", "exits", "bad_message", "sabotage")
_MANIFEST = "\n".join(
    f'[[nodes]]\ntype = "acme.{name}"\nruntime = "python"\nhandler = "acme_nodes:{name}"\n'
    for name in _HANDLERS
)

# name -> (the document's nodes and edges, the failing node, its error code, words of the message)
CASES: dict[str, tuple[str, str, str, str]] = {
    "lone surrogate": ("- {id: n, type: acme.surrogate}", "n", "invalid_output", "output.text"),
    "nested 100,000 deep": ("- {id: n, type: acme.deep}", "n", "limit_exceeded", "max_value_depth"),
    "NaN": ("- {id: n, type: acme.not_a_number}", "n", "invalid_output", "output.ratio"),
    "KeyboardInterrupt": ("- {id: n, type: acme.interrupt}", "n", "internal_error", "Keyboard"),
    "SystemExit": ("- {id: n, type: acme.exits}", "n", "internal_error", "SystemExit"),
    "surrogates in messages": ("- {id: n, type: acme.bad_message}", "n", "handler_error", "broken"),
    "parallel of 10^9": (
        "- {id: n, type: core.parallel, with: {count: '{{ 1000000000 }}'}, timeout: 2s,"
        " body: {nodes: [{id: x, type: core.transform, with: {value: 1}}]}}",
        "n",
        "limit_exceeded",
        "max_parallel_branches",
    ),
    "count from a template": (
        "- {id: n, type: core.loop, with: {count: '{{ 2.5 }}'},"
        " body: {nodes: [{id: x, type: core.transform, with: {value: 1}}]}}",
        "n",
        "invalid_parameters",
        "",
    ),
    "a store that fails on write": (
        "- {id: sabotage, type: acme.sabotage}\n"
        "  - {id: victim, type: core.transform, with: {value: 1}}\n"
        "  - {id: after, type: core.transform, with: {value: 2}}\n"
        "edges: [{from: sabotage, to: victim}, {from: victim, to: after}]",
        "victim",
        "store_error",
        "the disk refuses",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_run_ends_failed_and_recorded(
    polyhost: Polyhost, write: Callable[[str, str], Path], case: str
) -> None:
    nodes, node, code, says = CASES[case]
    write("flows/acme_nodes.py", _NODES)
    write("flows/polyhost.toml", _MANIFEST)
    flow = write("flows/hostile.yaml", f"version: 1\nid: hostile\nnodes:\n  {nodes}\n")

    done = polyhost("run", str(flow), "--json")
    assert done.code == 1, done.stderr
    result = done.json()
    run_id = result["execution_id"]
    assert isinstance(run_id, str) and len(run_id) == 23
    assert result["status"] == "failed"
    assert result["error"]["node"] == node
    assert result["error"]["code"] == code
    assert says in result["error"]["message"]
    assert "Traceback" not in done.stderr

    shown = polyhost("runs", "show", run_id, "--json")
    assert shown.code == 0, shown.stderr
    stored = shown.json()
    assert stored["status"] == "failed"
    assert stored["error"] == result["error"]
    assert all(n["status"] != "running" for n in stored["nodes"].values())
