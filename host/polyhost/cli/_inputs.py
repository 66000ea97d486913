"""Run inputs from the command line: ``--inputs FILE.json`` and ``--input KEY=VALUE``."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._errors import InputError
from .._limits import default_limits
from ..workflow._document import DocumentLimit, Unreadable, check_value, measure_json, read_limited

__all__ = ["check_input_names", "parse_input_value", "parse_inputs"]


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
    _check_values(inputs)
    return inputs


def _check_values(inputs: dict[str, Any]) -> None:
    # Inputs obey what a document obeys (nesting, lone surrogates, numbers out of range):
    # a run records them, and its expressions read them.
    try:
        problems = check_value(inputs, default_limits())
    except DocumentLimit as exc:
        raise InputError(f"inputs: {exc.message}", field=_dotted(exc.loc)) from None
    if problems:
        where = _dotted(problems[0].loc)
        raise InputError(f"input '{where}': {problems[0].message}", field=where)


def _dotted(loc: tuple[str | int, ...]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def check_input_names(names: Iterable[str], schema: Mapping[str, Any] | None) -> None:
    """Refuse an input the workflow does not declare, so that a typo is not silently dropped.

    A name is declared when the inputs schema lists it under ``properties``. A schema that
    lists none, or allows other names (``additionalProperties`` other than false, or
    ``patternProperties``), takes any name.
    """
    if not schema:
        return
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return
    if schema.get("additionalProperties", False) is not False or schema.get("patternProperties"):
        return
    for name in names:
        if name not in properties:
            close = difflib.get_close_matches(name, list(properties), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InputError(
                f"unknown input '{name}'{hint}: the workflow's inputs are "
                + ", ".join(sorted(properties)),
                field=name,
            )


def parse_input_value(text: str) -> Any:
    """``text`` as JSON when it is JSON (``42``, ``true``, ``[1,2]``, ``"x"``), else the text."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text
    except RecursionError:
        raise InputError(
            "an --input value is nested too deeply (see max_document_depth in docs/limits.md)"
        ) from None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; `--input x=NaN` means the word.
    raise ValueError(name)


def _read_inputs_file(path: Path) -> dict[str, Any]:
    try:
        text = read_limited(path, default_limits().max_document_bytes).decode("utf-8")
    except Unreadable as exc:
        raise InputError(f"--inputs {exc.message}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--inputs {path}: cannot read the file: {exc}") from None
    try:
        measure_json(text.encode("utf-8", "surrogatepass"), default_limits())
        value = json.loads(text)
    except DocumentLimit as exc:
        raise InputError(f"--inputs {path}: {exc.message}") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"--inputs {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(value, dict):
        raise InputError(f"--inputs {path}: expected a JSON object, got {type(value).__name__}")
    return value
