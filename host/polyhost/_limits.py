"""Every limit polyhost enforces, with its safe default and its setting.

One model, so that a limit has one name everywhere: in the error that reports it, in
``docs/limits.md`` and in the setting that raises it. A host takes its limits from
``HostConfig.limits``; a value can also be set for a whole process with an environment variable
named after the field, ``POLYHOST_LIMIT_<FIELD>`` (``POLYHOST_LIMIT_MAX_DOCUMENT_BYTES=1000000``).
Code that has no host at hand (the compiler called on its own) uses :func:`default_limits`.
"""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._errors import LimitExceededError, PolyhostError

__all__ = ["LimitExceededError", "Limits", "default_limits"]

_ENV_PREFIX = "POLYHOST_LIMIT_"
_KiB = 1024
_MiB = 1024 * _KiB


class Limits(BaseModel):
    """The limits of one host. Each field's description is its row in docs/limits.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- documents (loading and compiling) ------------------------------------------------
    max_document_bytes: int = Field(
        16 * _MiB, ge=1, description="size of a workflow or manifest file"
    )
    max_document_depth: int = Field(
        64, ge=4, description="nesting of lists and maps in a workflow document"
    )
    max_document_values: int = Field(
        2_000_000,
        ge=1,
        description="values (scalars, lists and maps) a document may hold once YAML aliases "
        "are expanded",
    )
    max_nodes: int = Field(
        200_000, ge=1, description="nodes in one workflow, loop and parallel bodies included"
    )
    max_body_depth: int = Field(
        16, ge=1, description="loop and parallel bodies nested inside one another"
    )

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, overridden by ``POLYHOST_LIMIT_<FIELD>`` variables."""
        values: dict[str, str] = {}
        for name in cls.model_fields:
            raw = os.environ.get(_ENV_PREFIX + name.upper())
            if raw is not None and raw.strip():
                values[name] = raw.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise PolyhostError(
                f"invalid limit setting: {problems}", code="invalid_setting"
            ) from None


@cache
def default_limits() -> Limits:
    """The limits of this process: defaults and ``POLYHOST_LIMIT_*`` (read once)."""
    return Limits.from_env()
