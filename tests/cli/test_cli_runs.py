"""``polyhost runs``: the history that ``run`` leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .conftest import Polyhost


def _run(polyhost: Polyhost, flow: Path, *extra: str) -> dict:
    done = polyhost("run", str(flow), *extra, "--json")
    assert done.code in (0, 1), done.stderr
    return done.json()


def test_runs_list_shows_the_newest_first(
    polyhost: Polyhost, two_nodes: Path, failing: Path
) -> None:
    first = _run(polyhost, two_nodes, "--input", "name=a")
    second = _run(polyhost, failing)

    done = polyhost("runs", "list", "--json")
    assert done.code == 0, done.stderr
    listed = done.json()
    assert [r["execution_id"] for r in listed] == [second["execution_id"], first["execution_id"]]
    assert [r["status"] for r in listed] == ["failed", "completed"]
    assert listed[0]["workflow_id"] == "failing"

    failed = polyhost("runs", "list", "--status", "failed", "--json").json()
    assert [r["execution_id"] for r in failed] == [second["execution_id"]]
    by_workflow = polyhost("runs", "list", "--workflow", "greet", "--json").json()
    assert [r["execution_id"] for r in by_workflow] == [first["execution_id"]]
    assert len(polyhost("runs", "list", "--limit", "1", "--json").json()) == 1

    table = polyhost("runs", "list")
    assert table.code == 0
    assert first["execution_id"] in table.stdout and second["execution_id"] in table.stdout


def test_runs_show_json_is_the_run_json_object(polyhost: Polyhost, two_nodes: Path) -> None:
    result = _run(polyhost, two_nodes, "--input", "name=world")
    run_id = result["execution_id"]

    shown = polyhost("runs", "show", run_id, "--json")
    assert shown.code == 0, shown.stderr
    assert shown.json() == result

    by_prefix = polyhost("runs", "show", run_id[:-3], "--json")
    assert by_prefix.json() == result

    readable = polyhost("runs", "show", run_id)
    assert readable.code == 0
    for text in (run_id, "completed", "hello", "shout", "events"):
        assert text in readable.stdout


def test_runs_rerun_starts_afresh_with_the_same_inputs(polyhost: Polyhost, two_nodes: Path) -> None:
    original = _run(polyhost, two_nodes, "--input", "name=again")

    done = polyhost("runs", "rerun", original["execution_id"], "--json")
    assert done.code == 0, done.stderr
    rerun = done.json()
    assert rerun["execution_id"] != original["execution_id"]
    assert rerun["status"] == "completed"
    assert rerun["outputs"] == {"greeting": "hello again!"}
    assert len(polyhost("runs", "list", "--json").json()) == 2


def test_runs_rerun_of_a_failed_run_fails_again(polyhost: Polyhost, failing: Path) -> None:
    original = _run(polyhost, failing)
    done = polyhost("runs", "rerun", original["execution_id"], "--json")
    assert done.code == 1
    assert done.json()["error"]["node"] == "boom"


def test_runs_events_is_the_ordered_log(polyhost: Polyhost, two_nodes: Path) -> None:
    result = _run(polyhost, two_nodes, "--input", "name=world")
    done = polyhost("runs", "events", result["execution_id"], "--json")
    assert done.code == 0, done.stderr
    events = done.json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "run.started"
    assert events[-1]["type"] == "run.completed"
    assert {e["node"] for e in events if e["type"] == "node.completed"} == {"hello", "shout"}

    readable = polyhost("runs", "events", result["execution_id"])
    assert readable.code == 0
    assert "node.completed" in readable.stdout


def test_an_unknown_run_id_exits_1_with_a_message(polyhost: Polyhost, two_nodes: Path) -> None:
    _run(polyhost, two_nodes, "--input", "name=x")
    for command in ("show", "rerun", "events"):
        done = polyhost("runs", command, "nosuchrun")
        assert done.code == 1, command
        assert "nosuchrun" in done.stderr
        assert "Traceback" not in done.stderr


def test_db_selects_another_store(polyhost: Polyhost, two_nodes: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'runs.db'}"
    result = _run(polyhost, two_nodes, "--input", "name=x", "--db", url)
    assert (tmp_path / "elsewhere" / "runs.db").is_file()
    assert polyhost("runs", "list", "--json").json() == []
    listed = polyhost("runs", "list", "--json", "--db", url).json()
    assert [r["execution_id"] for r in listed] == [result["execution_id"]]


def test_an_unsupported_store_url_is_an_error(polyhost: Polyhost, two_nodes: Path) -> None:
    done = polyhost("runs", "list", "--db", "postgres://db/runs")
    assert done.code == 1
    assert "not supported yet" in done.stderr


def test_rerun_finds_node_types_of_the_manifest_beside_the_workflow(
    polyhost: Polyhost, write: Callable[[str, str], Path]
) -> None:
    write(
        "flows/acme_nodes.py", "def upper(params):\n    return {'text': params['text'].upper()}\n"
    )
    write(
        "flows/polyhost.toml",
        '[[nodes]]\ntype = "acme.upper"\nruntime = "python"\nhandler = "acme_nodes:upper"\n',
    )
    flow = write(
        "flows/upper.yaml",
        "version: 1\nnodes:\n  - {id: up, type: acme.upper, with: {text: '{{ input.word }}'}}\n",
    )
    original = _run(polyhost, flow, "--input", "word=loud")
    assert original["outputs"] == {"up": {"text": "LOUD"}}

    done = polyhost("runs", "rerun", original["execution_id"], "--json")
    assert done.code == 0, done.stderr
    assert done.json()["outputs"] == {"up": {"text": "LOUD"}}
