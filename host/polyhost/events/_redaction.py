"""Keeps secrets out of events, the store, results, logs and what the CLI prints.

The values of the environment variables a host allows workflows to read (``env``: the host's
``env_allow``, a manifest's ``[host] env``, the CLI's ``--env``) are the likely secrets (tokens,
passwords). Every occurrence of one, in any string a run lets out (values, keys, error codes and
fields, messages, nested data), is replaced with ``***``.

Two redactors do this: a run's own (its host's allowed values), applied by the engine where
events are emitted and where anything is written to the store or returned; and the process's,
which knows every secret any host of this process allowed, and masks log records and what goes
to ``sys.stdout`` and ``sys.stderr`` (see :mod:`._capture`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar, cast

from ._result import NodeResult, RunResult

__all__ = ["MASK", "Redactor", "allowed_env", "known", "remember"]

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and numbers

T = TypeVar("T")


class _HasInputs(Protocol):
    inputs: dict[str, Any]


R = TypeVar("R", bound=_HasInputs)


class Redactor:
    """Replaces known secret values in strings and JSON-like data."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        found = {s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LENGTH}
        self._secrets: tuple[str, ...] = tuple(sorted(found, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values masked, longest first."""
        return self._secrets

    def text(self, value: str) -> str:
        """``value`` with every secret masked (the same object when it holds none)."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def redact(self, data: T) -> T:
        """JSON-like ``data`` with every secret masked, in keys as in values.

        Containers are copied (tuples become lists); data without secrets to mask is returned
        as is, so a redactor that knows no secret costs nothing.
        """
        if not self._secrets:
            return data
        return cast(T, self._walk(data))

    def _walk(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {
                (self.text(key) if isinstance(key, str) else key): self._walk(value)
                for key, value in data.items()
            }
        if isinstance(data, list | tuple):
            return [self._walk(value) for value in data]
        return data

    def node(self, record: NodeResult) -> NodeResult:
        """A copy of a node's record with its output and error masked (itself without secrets)."""
        if not self._secrets:
            return record
        return dataclasses.replace(
            record, output=self._walk(record.output), error=self._walk(record.error)
        )

    def run_record(self, record: R) -> R:
        """A copy of a run's record (a dataclass with ``inputs``) with its inputs masked."""
        if not self._secrets:
            return record
        inputs = self._walk(record.inputs)
        return dataclasses.replace(record, inputs=inputs)  # type: ignore[type-var]

    def result(self, result: RunResult) -> RunResult:
        """A copy of a run's result with outputs, error, inputs, pause and nodes masked."""
        if not self._secrets:
            return result
        return dataclasses.replace(
            result,
            outputs=self._walk(result.outputs),
            error=self._walk(result.error),
            inputs=self._walk(result.inputs),
            pause=self._walk(result.pause),
            nodes={node_id: self.node(record) for node_id, record in result.nodes.items()},
        )


# The process's secrets ------------------------------------------------------------------------

_lock = threading.Lock()
_known: frozenset[str] = frozenset()
_process = Redactor(())


def known() -> Redactor:
    """The redactor of every secret this process was told of (empty: masks nothing)."""
    return _process


def remember(values: Iterable[str]) -> None:
    """Add secrets to the process's redactor: logs and standard streams mask them from now on.

    Secrets are never forgotten: masking a value after its host closed costs little, letting it
    through would leak it.
    """
    global _known, _process  # noqa: PLW0603 (one registry per process, by design)
    fresh = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH}
    if fresh <= _known:
        return
    with _lock:
        _known = _known | fresh
        _process = Redactor(_known)
    from ._capture import install_logging  # noqa: PLC0415 (_capture imports this module)

    install_logging()


def allowed_env(names: Iterable[str]) -> dict[str, str]:
    """The allowed variables that are set, by name; their values become the process's secrets."""
    values = {name: os.environ[name] for name in dict.fromkeys(names) if name in os.environ}
    remember(values.values())
    return values
