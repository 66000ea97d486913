"""Cost of one CEL evaluation in a scope holding a 1,000-row table.

Expressions are parsed once and the variables converted once; the loop measures only
evaluation (and converting the result back to Python). Compared in the same run with
cel-python (`celpy`) and common-expression-language (module `cel`) when importable.
Prints one JSON object with microseconds per evaluation.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from polyhost import _native

ROWS = 1_000
CASES = {
    "condition": "input.threshold > 10 && size(totals.rows) < 5000",
    "member_read": "totals.rows[3].sum",
}
EXPECTED = {"condition": True, "member_read": 3.5}
TARGET_SECONDS = 0.3
REPEAT = 5


def variables() -> dict[str, Any]:
    rows = [{"region": f"r{i % 17}", "sum": i + 0.5, "count": i} for i in range(ROWS)]
    return {
        "input": {"threshold": 12, "path": "orders.csv"},
        "totals": {"rows": rows, "count": 3},
        "var": {"currency": "EUR"},
    }


def per_call_us(fn: Callable[[], object]) -> float:
    """Best of REPEAT batches, each sized to take about TARGET_SECONDS / REPEAT."""
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < 0.05:
        fn()
        calls += 1
    batch = max(1, int(calls * TARGET_SECONDS / REPEAT / 0.05))
    best = float("inf")
    for _ in range(REPEAT):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        best = min(best, (time.perf_counter() - start) / batch)
    return best * 1e6


def bench_polyhost(values: dict[str, Any]) -> dict[str, float]:
    scope = _native.Scope()
    for name, value in values.items():
        scope.set(name, value)
    out = {}
    for case, source in CASES.items():
        expr = _native.Expression(source)
        assert expr.evaluate(scope) == EXPECTED[case]
        out[case] = per_call_us(functools.partial(expr.evaluate, scope))
    return out


def bench_celpy(values: dict[str, Any]) -> dict[str, float]:
    celpy = importlib.import_module("celpy")
    env = celpy.Environment()
    activation = {name: celpy.json_to_cel(value) for name, value in values.items()}
    out = {}
    for case, source in CASES.items():
        program = env.program(env.compile(source))
        assert program.evaluate(activation) == EXPECTED[case]
        out[case] = per_call_us(functools.partial(program.evaluate, activation))
    return out


def bench_common_expression_language(values: dict[str, Any]) -> dict[str, float]:
    cel = importlib.import_module("cel")  # the common-expression-language distribution
    context = cel.Context(values)
    out = {}
    for case, source in CASES.items():
        program = cel.compile(source)
        assert program.execute(context) == EXPECTED[case]
        out[case] = per_call_us(functools.partial(program.execute, context))
    return out


def main() -> None:
    values = variables()
    results: dict[str, dict[str, float]] = {"polyhost": bench_polyhost(values)}
    peers: dict[str, Callable[[dict[str, Any]], dict[str, float]]] = {
        "celpy": bench_celpy,
        "common_expression_language": bench_common_expression_language,
    }
    for name, bench in peers.items():
        try:
            results[name] = bench(values)
        except ImportError:
            print(f"{name} not installed: skipped", file=sys.stderr)
    rounded = {
        name: {case: round(us, 3) for case, us in cases.items()} for name, cases in results.items()
    }
    ratios = {
        f"{name}_over_polyhost": {
            case: round(us / results["polyhost"][case], 1) for case, us in cases.items()
        }
        for name, cases in results.items()
        if name != "polyhost"
    }
    print(
        json.dumps(
            {
                "benchmark": "cel_eval",
                "rows": ROWS,
                "expressions": CASES,
                "unit": "microseconds per evaluation",
                "results": rounded,
                "ratios": ratios,
                "goal_us": 5.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
