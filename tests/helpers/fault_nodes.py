"""A side-effecting node type for the crash-recovery tests, loaded from a ``polyhost.toml``.

``step`` writes down every invocation and performs its side effect at most once per idempotency
key, the way a handler that charges a card or sends a mail should. Both files are written with
``O_APPEND`` and ``fsync``, one whole line per write, so a SIGKILL cannot lose or tear a line that
was written, and concurrent nodes (worker threads) cannot interleave.

The files are named by ``params["log"]``/``params["effects"]``, else by the environment variables
``FAULT_LOG``/``FAULT_EFFECTS``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["EFFECTS_ENV", "LOG_ENV", "append_line", "invocations", "step", "step_value"]

LOG_ENV = "FAULT_LOG"
EFFECTS_ENV = "FAULT_EFFECTS"
MODULUS = 1_000_003


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` durably: one write of the whole line, then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(path: str | Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.split("\n") if line]


def step_value(x: Any) -> int:
    """The output of ``step`` for the parameter ``x``: an int, or a list of ints (a join)."""
    total = sum(int(v) for v in x) if isinstance(x, list) else int(x)
    return (total * 2 + 1) % MODULUS


def step(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Log the invocation, sleep, apply the side effect once per key, return a pure value.

    ``params``: ``x`` (int or list of ints), ``name`` (a label written to the log, so tests can
    tell nodes and loop iterations apart without knowing how keys are spelt), ``sleep`` (seconds,
    default 0.02), and optionally ``log`` and ``effects`` (file paths).
    """
    log = params.get("log") or os.environ[LOG_ENV]
    effects = params.get("effects") or os.environ[EFFECTS_ENV]
    key = ctx.idempotency_key
    name = params.get("name", ctx.node_id)
    append_line(log, f"invoked {key} {name}")
    time.sleep(float(params.get("sleep", 0.02)))
    if f"effect {key}" not in _lines(effects):
        append_line(effects, f"effect {key}")
    return {"value": step_value(params["x"])}


def invocations(path: str | Path) -> list[tuple[str, str]]:
    """The ``(key, name)`` of every logged invocation, in order."""
    out = []
    for line in _lines(path):
        # Names never hold spaces; keys are not assumed not to.
        head, name = line.rsplit(" ", 1)
        out.append((head.removeprefix("invoked "), name))
    return out
