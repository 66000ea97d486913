"""Keeps secrets out of events and stored errors.

Values of environment variables the host exposes to workflows (the ``env`` allow-list) are the
likely secrets (tokens, passwords); every occurrence in event data is replaced with ``***``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Redactor"]

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and numbers


class Redactor:
    """Replaces known secret values in strings and JSON-like data."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        found = {s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LENGTH}
        self._secrets = sorted(found, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def redact(self, data: Any) -> Any:
        """A copy of JSON-like ``data`` with every secret masked (data without secrets as is)."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {key: self.redact(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [self.redact(value) for value in data]
        return data
