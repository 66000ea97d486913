"""Looking at processes from tests."""

from __future__ import annotations

import os
import time


def is_running(pid: int) -> bool:
    """True while a process with this id exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for the processes to end; the ids of those still running."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(is_running(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if is_running(pid)]
