"""The DAG plan and per-run scheduler state, implemented in the Rust extension.

Only this module and :mod:`._expressions` import ``polyhost._native``.
"""

from __future__ import annotations

from ._native import Plan, PlanError, RunState

__all__ = ["Plan", "PlanError", "RunState"]
