"""Where runs are kept: the ``RunStore`` contract, its writer, and the SQLite backend
(:mod:`.sqlite`).
"""

from __future__ import annotations

from ._base import (
    DeploymentRecord,
    DeploymentVersion,
    LeaseState,
    Owner,
    RunRecord,
    RunStore,
    RunSummary,
)
from ._open import default_home, open_store
from .sqlite import SQLiteStore

__all__ = [
    "DeploymentRecord",
    "DeploymentVersion",
    "LeaseState",
    "Owner",
    "RunRecord",
    "RunStore",
    "RunSummary",
    "SQLiteStore",
    "default_home",
    "open_store",
]
