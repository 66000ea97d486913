"""A host's settings: ``HostConfig``, every field with a safe default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._limits import Limits, default_limits
from ..store import default_home

__all__ = ["HostConfig"]


def _default_roots() -> list[Path]:
    """``$POLYHOST_ALLOWED_ROOTS`` (paths joined by the OS path separator), else the cwd."""
    configured = os.environ.get("POLYHOST_ALLOWED_ROOTS")
    if configured:
        return [Path(part) for part in configured.split(os.pathsep) if part]
    return [Path.cwd()]


class HostConfig(BaseModel):
    """Settings of a host; every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(default_factory=default_home, description="state folder ($POLYHOST_HOME)")
    db: str | None = Field(None, description="store URL; default: HOME/polyhost.db")
    concurrency: int = Field(64, ge=1, description="nodes running at once, across all runs")
    env_allow: list[str] = Field(
        default_factory=list, description="environment variables workflows may read as env.NAME"
    )
    max_output_bytes: int = Field(16 * 1024 * 1024, ge=1, description="largest node output")
    process_workers: int | None = Field(None, ge=1, description="size of the process pool")
    lease_seconds: float = Field(
        15.0, gt=0, description="how long a run stays ours without a renewal (crash recovery)"
    )
    durable_commits: bool = Field(
        True,
        description="commit each node's result before its dependents start (crash recovery "
        "never re-runs a completed node); off: commit in the background, cheaper per node, "
        "and a crash may run the last completed nodes again (same idempotency key)",
    )
    allowed_roots: list[Path] = Field(
        default_factory=_default_roots,
        description="folders native nodes may read and write files in (relative paths resolve "
        "against the first); nothing outside them, symlinks included",
    )
    renew_every: float = Field(
        1.0, gt=0, description="lease renewal period; also how soon a cancel from elsewhere lands"
    )
    limits: Limits = Field(
        default_factory=default_limits,
        description="every limit on documents, expressions and runs (docs/limits.md)",
    )
    node_defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per node type, `with` values its nodes get unless they set them (for "
        "llm.chat: base_url, model, api_key_env); a manifest's [defaults] table wins per key",
    )
    wasm_cache: bool = Field(
        True,
        description="keep compiled wasm modules under HOME/wasm-cache, so a new process loads "
        "them in milliseconds instead of compiling again",
    )
