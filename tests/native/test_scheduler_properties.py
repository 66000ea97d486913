"""RunState against a small reference model of the scheduling rules.

The model settles edges one by one and recomputes every pending node until nothing
changes: slow and obviously right. Random DAGs are driven to the end with random choices
(complete on a random subset of ports, skip, complete a whole wave on one port, mark
running), comparing each step, a mid-run snapshot/restore, and the final states.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyhost import _native

PORTS = ("out", "true", "false", "error")
STATES = ("pending", "ready", "running", "completed", "skipped")
Edge = tuple[int, int, str]


@dataclass
class Model:
    """The rules, stated directly."""

    n: int
    edges: list[Edge]
    state: list[str] = field(init=False)
    # None: unsettled; True: taken; False: settled, not taken.
    edge_state: list[bool | None] = field(init=False)

    def __post_init__(self) -> None:
        self.state = ["pending"] * self.n
        self.edge_state = [None] * len(self.edges)

    def incoming(self, v: int) -> list[int]:
        return [i for i, (_, b, _) in enumerate(self.edges) if b == v]

    def start(self) -> list[int]:
        ready = [v for v in range(self.n) if not self.incoming(v)]
        for v in ready:
            self.state[v] = "ready"
        return ready

    def finish(self, node: int, ports: set[str], new_state: str) -> tuple[list[int], list[int]]:
        assert self.state[node] in ("ready", "running")
        self.state[node] = new_state
        self.settle(node, ports)
        ready: list[int] = []
        skipped: list[int] = []
        changed = True
        while changed:
            changed = False
            for v in range(self.n):
                inc = self.incoming(v)
                if self.state[v] != "pending" or not inc:
                    continue
                if any(self.edge_state[e] is None for e in inc):
                    continue
                changed = True
                if any(self.edge_state[e] for e in inc):
                    self.state[v] = "ready"
                    ready.append(v)
                else:
                    self.state[v] = "skipped"
                    skipped.append(v)
                    self.settle(v, set())
        return sorted(ready), sorted(skipped)

    def settle(self, node: int, ports: set[str]) -> None:
        for i, (a, _, port) in enumerate(self.edges):
            if a == node:
                self.edge_state[i] = port in ports

    def ready(self) -> list[int]:
        return [v for v in range(self.n) if self.state[v] in ("ready", "running")]


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[Edge]]:
    n = draw(st.integers(min_value=1, max_value=30))
    if n == 1:
        return n, []
    pairs = st.integers(0, n - 2).flatmap(
        lambda a: st.tuples(st.just(a), st.integers(a + 1, n - 1))
    )
    edges = draw(
        st.lists(st.tuples(pairs, st.sampled_from(PORTS)), max_size=3 * n).map(
            lambda es: [(a, b, port) for (a, b), port in es]
        )
    )
    return n, edges


def check(run: _native.RunState, model: Model) -> None:
    assert [run.state(v) for v in range(model.n)] == model.state
    assert run.counts() == {s: model.state.count(s) for s in STATES}


@settings(max_examples=200, deadline=None)
@given(graph=dags(), data=st.data())
def test_run_state_follows_the_reference_model(
    graph: tuple[int, list[Edge]], data: st.DataObject
) -> None:
    n, edges = graph
    plan = _native.Plan(n, edges)
    run = plan.new_run()
    model = Model(n, edges)
    assert run.start() == model.start()
    check(run, model)
    restore_at = data.draw(st.integers(0, 2 * n), label="restore at step")
    step = 0
    while model.ready():
        if step == restore_at:
            snapshot = run.snapshot()
            run = _native.RunState.restore(plan, json.loads(json.dumps(snapshot)))
            assert run.snapshot() == snapshot
        step += 1
        ready = model.ready()
        action = data.draw(st.sampled_from(["complete", "skip", "wave", "run"]), label="action")
        if action == "wave":
            port = data.draw(st.sampled_from(PORTS), label="port")
            got = run.complete_many(ready, port)
            expected: tuple[list[int], list[int]] = ([], [])
            for v in ready:
                r, s = model.finish(v, {port}, "completed")
                expected = (expected[0] + r, expected[1] + s)
            assert got == (sorted(expected[0]), sorted(expected[1]))
        else:
            node = data.draw(st.sampled_from(ready), label="node")
            if action == "run":
                if model.state[node] == "ready":
                    run.mark_running(node)
                    model.state[node] = "running"
                else:
                    with pytest.raises(_native.PlanError):
                        run.mark_running(node)
            elif action == "skip":
                assert run.skip(node) == model.finish(node, set(), "skipped")
            else:
                ports = data.draw(st.sets(st.sampled_from(PORTS)), label="ports")
                assert run.complete(node, sorted(ports)) == model.finish(node, ports, "completed")
        check(run, model)
        assert not run.is_finished() or not model.ready()
        if "pending" in model.state:
            pending = model.state.index("pending")
            with pytest.raises(_native.PlanError):
                run.complete(pending, ["out"])
    assert run.is_finished()
    assert "pending" not in model.state
    check(run, model)


def test_rules_by_example() -> None:
    # 0 -true-> 1 -> 3 ; 0 -false-> 2 -> 3 ; 1 -> 4 ; 5 has no inputs
    plan = _native.Plan(
        6,
        [(0, 1, "true"), (0, 2, "false"), (1, 3, "out"), (2, 3, "out"), (1, 4, "out")],
    )
    run = plan.new_run()
    assert run.start() == [0, 5]
    with pytest.raises(_native.PlanError, match="already been started"):
        run.start()
    assert run.complete(0, ["false"]) == ([2], [1, 4])
    assert run.state(1) == "skipped"
    run.mark_running(2)
    assert run.state(2) == "running"
    assert run.complete(2, ["out"]) == ([3], [])
    assert run.skip(5) == ([], [])
    assert run.complete(3, []) == ([], [])
    assert run.is_finished()
    assert run.counts() == {"pending": 0, "ready": 0, "running": 0, "completed": 3, "skipped": 3}
    with pytest.raises(_native.PlanError, match="not ready or running"):
        run.complete(3, ["out"])


def test_complete_many_is_all_or_nothing() -> None:
    plan = _native.Plan(3, [(0, 2, "out"), (1, 2, "out")])
    run = plan.new_run()
    run.start()
    with pytest.raises(_native.PlanError):
        run.complete_many([0, 1, 0], "out")
    with pytest.raises(_native.PlanError, match="out of range"):
        run.complete_many([0, 7], "out")
    assert run.counts()["ready"] == 2
    assert run.complete_many([1, 0], "out") == ([2], [])


def test_complete_rejects_a_bare_string_of_ports() -> None:
    run = _native.Plan(2, [(0, 1, "out")]).new_run()
    run.start()
    with pytest.raises(TypeError):
        run.complete(0, "out")


def test_restore_rejects_mismatched_snapshots() -> None:
    plan = _native.Plan(3, [(0, 1, "a"), (1, 2, "b")])
    run = plan.new_run()
    run.start()
    run.complete(0, ["a"])
    good = run.snapshot()
    assert good == {
        "version": 1,
        "node_count": 3,
        "edge_count": 2,
        "started": True,
        "states": ["completed", "ready", "pending"],
        "taken_edges": [0],
    }
    other = _native.Plan(4, [(0, 1, "a")])
    bad: list[object] = [
        None,
        [],
        {**good, "version": 2},
        {**good, "states": ["completed", "ready"]},
        {**good, "states": ["completed", "ready", "done"]},
        {**good, "states": ["completed", "pending", "pending"]},
        {**good, "states": ["completed", "ready", "ready"]},
        {**good, "taken_edges": [1]},
        {**good, "taken_edges": [5]},
        {**good, "taken_edges": []},
        {**good, "started": 1},
        {k: v for k, v in good.items() if k != "states"},
    ]
    for snapshot in bad:
        with pytest.raises(_native.PlanError, match="snapshot"):
            _native.RunState.restore(plan, snapshot)  # type: ignore[arg-type]
    with pytest.raises(_native.PlanError, match="snapshot"):
        _native.RunState.restore(other, good)
    restored = _native.RunState.restore(plan, good)
    assert restored.complete(1, ["b"]) == ([2], [])
