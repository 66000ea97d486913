"""Run inputs from the command line: ``--inputs FILE.json`` and ``--input KEY=VALUE``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import InputError

__all__ = ["parse_input_value", "parse_inputs"]


def parse_inputs(pairs: Sequence[str], inputs_file: Path | None = None) -> dict[str, Any]:
    """The inputs object: the file's keys first, then each ``--input`` in order (the last wins).

    Raises ``InputError`` for an unreadable or non-object file and for a pair without ``=``.
    """
    inputs: dict[str, Any] = {}
    if inputs_file is not None:
        inputs.update(_read_inputs_file(inputs_file))
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--input {pair!r}: expected KEY=VALUE", field=key or None)
        inputs[key] = parse_input_value(text)
    return inputs


def parse_input_value(text: str) -> Any:
    """``text`` as JSON when it is JSON (``42``, ``true``, ``[1,2]``, ``"x"``), else the text."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; `--input x=NaN` means the word.
    raise ValueError(name)


def _read_inputs_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--inputs {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--inputs {path}: cannot read the file: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--inputs {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise InputError(f"--inputs {path}: expected a JSON object, got {type(value).__name__}")
    return value
