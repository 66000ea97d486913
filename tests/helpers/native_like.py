"""Stand-ins for an out-of-tree native module: callables ``(params, cancel) -> dict``.

A compiled PyO3 module exposes the same shape (see examples/native-node); these let the adapter's
own behaviour (paths, errors, cancellation) be tested without building one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

SEEN_CANCEL: list[bool] = []


def read_size(params: dict[str, Any], cancel: Any) -> dict[str, Any]:
    return {"path": params["path"], "bytes": Path(params["path"]).stat().st_size}


def refuse(params: dict[str, Any], cancel: Any) -> dict[str, Any]:
    raise ValueError("the input is not acceptable")


def spin(params: dict[str, Any], cancel: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cancel.cancelled:
            SEEN_CANCEL.append(True)
            return {"stopped": True}
        time.sleep(0.005)
    return {"stopped": False}
