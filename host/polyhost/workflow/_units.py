"""Durations and sizes as the workflow format writes them (spec section 2)."""

from __future__ import annotations

import math
import re

__all__ = ["MAX_DURATION", "parse_duration", "parse_size"]

MAX_DURATION = 365 * 24 * 3600.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_FACTORS = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number of seconds or a string such as ``250ms``, ``10s``, ``5m``, ``1h``.

    A duration is finite, not negative and at most :data:`MAX_DURATION` (365 days): an
    endless timeout or retry delay is a mistake, and event loops cannot wait that long.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"not a duration: {value!r} (use a number of seconds or 250ms, 10s, 5m, 1h)"
            )
        seconds = float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
    else:
        seconds = float(value) if abs(value) < 1e300 else math.copysign(math.inf, value)
    if math.isnan(seconds):
        raise ValueError(f"a duration must be a number, found {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(
            f"a duration can be at most {MAX_DURATION:.0f} seconds (365 days), found {value!r}"
        )
    return seconds


def parse_size(value: int | str) -> int:
    """Bytes from a number of bytes or a string such as ``64MiB``."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value!r}")
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"not a size: {value!r} (use bytes or KiB, MiB, GiB)")
    return int(float(match.group(1)) * _SIZE_FACTORS[match.group(2)])
