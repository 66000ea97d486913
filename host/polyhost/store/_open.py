"""Where the store lives: ``--db`` URLs and ``$POLYHOST_HOME``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from .._errors import StoreError
from ._base import RunStore
from .sqlite import DB_FILE_NAME, SQLiteStore

__all__ = ["default_home", "open_store"]

# At least two letters, so that a Windows drive (C:\runs.db) is read as a path.
_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_MEMORY: Final = frozenset(
    {":memory:", "sqlite://:memory:", "sqlite:///:memory:", "sqlite::memory:"}
)


def open_store(url: str | None, home: Path) -> RunStore:
    """The store a ``--db`` URL names; ``None`` means ``home/polyhost.db``.

    Accepted: ``sqlite:///abs/path.db``, ``sqlite:relative.db``, a plain path, and
    ``:memory:`` (or ``sqlite://:memory:``), which gives a private temporary file removed on
    close. Other schemes raise ``StoreError``. A new backend adds its scheme here.
    """
    if url is None or not url.strip():
        return SQLiteStore(Path(home).expanduser() / DB_FILE_NAME)
    url = url.strip()
    if url in _MEMORY:
        return SQLiteStore.temporary()
    match = _SCHEME.match(url)
    if match is None:
        return SQLiteStore(url)
    scheme = match.group(1).lower()
    if scheme != "sqlite":
        raise StoreError(
            f"not supported yet: {scheme!r} stores ({url}); use a SQLite path or sqlite:///PATH"
        )
    rest = url[match.end() :]
    if rest.startswith("//"):
        # sqlite:///abs -> /abs; sqlite:////abs (the SQLAlchemy spelling) -> /abs too.
        rest = rest[2:]
        if rest.startswith("//"):
            rest = rest[1:]
    rest = rest.split("?", 1)[0]
    if not rest:
        raise StoreError(f"{url}: the URL names no database file")
    return SQLiteStore(rest)


def default_home() -> Path:
    """Where polyhost keeps its state: ``$POLYHOST_HOME``, else ``~/.polyhost``."""
    raw = os.environ.get("POLYHOST_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".polyhost"
