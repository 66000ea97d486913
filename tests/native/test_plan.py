"""Plan: construction, cycles, topological order, ancestors and neighbours."""

from __future__ import annotations

import random
from graphlib import TopologicalSorter

import pytest

from polyhost import _native


def plan(n: int, *pairs: tuple[int, int], port: str = "out") -> _native.Plan:
    return _native.Plan(n, [(a, b, port) for a, b in pairs])


def test_counts_keep_duplicate_edges() -> None:
    p = _native.Plan(3, [(0, 1, "out"), (0, 1, "out"), (1, 2, "true")])
    assert (p.node_count, p.edge_count) == (3, 3)
    assert p.successors(0) == [(1, "out"), (1, "out")]
    assert repr(p) == "Plan(node_count=3, edge_count=3)"


def test_empty_plan() -> None:
    p = _native.Plan(0, [])
    assert p.topo_order() == []
    assert p.find_cycle() is None
    run = p.new_run()
    assert run.start() == []
    assert run.is_finished()


def test_edges_may_be_any_iterable_of_tuples_or_lists() -> None:
    p = _native.Plan(3, iter([(0, 1, "out"), [1, 2, "err"]]))  # type: ignore[arg-type]
    assert p.predecessors(2) == [(1, "err")]
    assert _native.Plan(2, ((0, 1, "out"),)).edge_count == 1


@pytest.mark.parametrize(
    "edges",
    [[(0, 3, "out")], [(3, 0, "out")], [(-1, 0, "out")], [(0, 1, "out"), (1, 10**30, "out")]],
)
def test_out_of_range_nodes_are_plan_errors(edges: list[tuple[int, int, str]]) -> None:
    with pytest.raises(_native.PlanError, match="out of range"):
        _native.Plan(3, edges)


def test_negative_node_count_is_a_plan_error() -> None:
    with pytest.raises(_native.PlanError):
        _native.Plan(-1, [])


@pytest.mark.parametrize("edge", [(0, 1), (0, 1, "out", 2), (0, 1, 5), "abc", (0.5, 1, "out")])
def test_malformed_edges_are_type_errors(edge: object) -> None:
    with pytest.raises(TypeError):
        _native.Plan(2, [edge])  # type: ignore[list-item]


def test_errors_are_value_errors() -> None:
    for error in (_native.PlanError, _native.ExpressionSyntaxError, _native.ExpressionEvalError):
        assert issubclass(error, ValueError)


def test_self_loop_is_a_cycle_of_one() -> None:
    assert plan(3, (0, 1), (2, 2)).find_cycle() == [2]


def test_three_cycle_is_named_in_edge_order_from_its_smallest_node() -> None:
    p = plan(6, (0, 4), (4, 2), (2, 5), (5, 4))
    assert p.find_cycle() == [2, 5, 4]
    p = plan(4, (3, 1), (1, 2), (2, 3))
    assert p.find_cycle() == [1, 2, 3]


def test_acyclic_plan_has_no_cycle() -> None:
    assert plan(4, (0, 1), (0, 2), (1, 3), (2, 3)).find_cycle() is None
    assert plan(4, (3, 2), (2, 1), (1, 0)).find_cycle() is None


def test_found_cycle_is_a_real_cycle() -> None:
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randrange(1, 12)
        pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(20))]
        cycle = plan(n, *pairs).find_cycle()
        if cycle is None:
            list(TopologicalSorter({b: {a} for a, b in pairs}).static_order())
            continue
        assert cycle[0] == min(cycle)
        assert len(set(cycle)) == len(cycle)
        for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            assert (a, b) in pairs


def test_topo_order_takes_smallest_index_first() -> None:
    p = plan(5, (3, 1), (4, 0), (1, 2), (0, 2))
    assert p.topo_order() == [3, 1, 4, 0, 2]
    assert plan(3).topo_order() == [0, 1, 2]


def test_topo_order_on_cyclic_plan_is_a_plan_error() -> None:
    p = plan(4, (0, 1), (1, 2), (2, 1), (2, 3))
    with pytest.raises(_native.PlanError, match=r"cycle: 1 -> 2 -> 1"):
        p.topo_order()
    with pytest.raises(_native.PlanError, match="cycle"):
        p.new_run()


def test_topo_order_matches_the_rules_on_random_graphs() -> None:
    rng = random.Random(11)
    for size in (10, 300, 3000):
        perm = list(range(size))
        rng.shuffle(perm)
        pairs = set()
        for _ in range(size * 3):
            a, b = sorted(rng.sample(range(size), 2))
            pairs.add((perm[a], perm[b]))
        order = plan(size, *pairs).topo_order()
        assert sorted(order) == list(range(size))
        position = {v: i for i, v in enumerate(order)}
        assert all(position[a] < position[b] for a, b in pairs)


def test_ancestors_are_sorted_and_exclude_the_node() -> None:
    p = plan(7, (0, 2), (1, 2), (2, 3), (4, 3), (3, 5), (6, 4))
    assert p.ancestors(3) == [0, 1, 2, 4, 6]
    assert p.ancestors(0) == []
    assert plan(3, (0, 1), (1, 2), (2, 0)).ancestors(1) == [0, 2]


def test_ancestors_on_a_big_graph() -> None:
    rng = random.Random(3)
    n = 5000
    pairs: set[tuple[int, int]] = set()
    for _ in range(3 * n):
        a, b = sorted(rng.sample(range(n), 2))
        pairs.add((a, b))
    preds: dict[int, list[int]] = {}
    for a, b in pairs:
        preds.setdefault(b, []).append(a)
    seen: set[int] = set()
    stack = [n - 1]
    while stack:
        for u in preds.get(stack.pop(), []):
            if u not in seen:
                seen.add(u)
                stack.append(u)
    assert plan(n, *pairs).ancestors(n - 1) == sorted(seen)


def test_neighbours_keep_insertion_order_and_ports() -> None:
    p = _native.Plan(4, [(0, 3, "b"), (0, 1, "a"), (2, 3, "error"), (0, 3, "a")])
    assert p.successors(0) == [(3, "b"), (1, "a"), (3, "a")]
    assert p.predecessors(3) == [(0, "b"), (2, "error"), (0, "a")]
    assert p.successors(3) == []


@pytest.mark.parametrize("method", ["ancestors", "successors", "predecessors"])
def test_node_queries_check_the_index(method: str) -> None:
    p = plan(2, (0, 1))
    for node in (2, -1):
        with pytest.raises(_native.PlanError, match="out of range"):
            getattr(p, method)(node)
