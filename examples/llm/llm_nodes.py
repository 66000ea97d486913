"""The python tool of the LLM example: a percentage change, so the model need not do arithmetic."""

from __future__ import annotations

from typing import Any


def percent_change(params: dict[str, Any]) -> dict[str, Any]:
    """``example.percent_change``: how much ``after`` differs from ``before``, in percent."""
    before, after = float(params["before"]), float(params["after"])
    if before == 0:
        return {"percent": None, "note": "before is 0: no percentage"}
    return {"percent": round((after - before) / before * 100, 1)}
