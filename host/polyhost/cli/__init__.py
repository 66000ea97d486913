"""The ``polyhost`` command line (spec section 5): run, compile, runs, nodes, schema."""

from __future__ import annotations

from ._app import app, main

__all__ = ["app", "main"]
