"""The read side of a host: its runs, listed, shown and replayed from the store.

Everything that shows runs to people or programs (the CLI's ``runs`` commands, a server) reads
through :class:`RunHistory` and never opens the store itself, so each of them gets the same
objects (built in :mod:`._result`) and the same errors. Reads are synchronous and may block on
the store: async callers run them in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from typing import Final

from .._errors import InputError, RunStateError
from ..events._result import EventPage, RunDetails, RunOverview, RunPage, RunResult, RunStatus
from ..store import RunRecord, RunStore, RunSummary

__all__ = ["RunHistory", "details_of", "manifest_paths"]

_MAX_CURSOR_CHARS: Final = 1024


class RunHistory:
    """What a host's store knows about runs, past and present.

    Every method that takes a run id also takes a unique prefix of one; an unknown id raises
    ``RunNotFoundError`` and a prefix several runs start with ``AmbiguousRunIdError`` (its
    ``candidates`` name some of them).
    """

    def __init__(self, store: RunStore | None) -> None:
        self._store = store

    @property
    def available(self) -> bool:
        """False for a host that runs without a store (and so keeps no history)."""
        return self._store is not None

    def resolve(self, run_id: str) -> str:
        """The full id of the one run whose id is ``run_id`` or starts with it."""
        return self._require().resolve_id(run_id)

    def list(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """Runs newest first (by start time), filtered, one page at a time.

        ``since``/``until`` bound the start time (``since <= started_at < until``, epoch
        seconds). ``cursor`` is a page's ``next_cursor``: the runs after the last one it
        showed, with the same filters. Pages are keyed on (start time, id), so runs that start
        while someone pages through the history do not shift the pages after the first.
        ``limit <= 0`` gives every matching run in one page.
        """
        if status is not None:
            try:
                status = RunStatus(status)
            except ValueError:
                known = ", ".join(s.value for s in RunStatus)
                raise InputError(
                    f"no run status {status!r} (one of {known})", field="status"
                ) from None
        before = _decode_cursor(cursor) if cursor is not None else None
        rows = self._require().list_runs(
            limit=limit + 1 if limit > 0 else 0,
            status=status,
            workflow_id=workflow_id,
            since=since,
            until=until,
            before=before,
        )
        more = limit > 0 and len(rows) > limit
        rows = rows[:limit] if more else rows
        next_cursor = _encode_cursor(rows[-1]) if more else None
        return RunPage(tuple(_overview_of(row) for row in rows), next_cursor)

    def result(self, run_id: str) -> RunResult:
        """The run's result object (for a run still going: what is known so far)."""
        return self._require().get_result(run_id)

    def details(self, run_id: str) -> RunDetails:
        """What the run started with: document, inputs, source, manifests, parent run."""
        return details_of(self._require().get_record(run_id))

    def events(self, run_id: str, *, after_seq: int = 0, limit: int | None = None) -> EventPage:
        """The run's events with a sequence number above ``after_seq``, in order; at most
        ``limit`` of them (``None``: all)."""
        if limit is not None and limit <= 0:
            raise InputError(f"limit must be at least 1, not {limit}", field="limit")
        store = self._require()
        full_id = store.resolve_id(run_id)
        rows = store.events(
            full_id, after_seq=after_seq, limit=None if limit is None else limit + 1
        )
        more = limit is not None and len(rows) > limit
        events = tuple(rows[:limit] if more else rows)
        next_seq = events[-1].seq if events else after_seq
        return EventPage(full_id, events, next_seq, more)

    def _require(self) -> RunStore:
        if self._store is None:
            raise RunStateError("this host runs without a store, so it keeps no history")
        return self._store


def manifest_paths(joined: str | None) -> tuple[str, ...]:
    """The manifests a run record names (kept as one string, joined by the path separator)."""
    return tuple(part for part in (joined or "").split(os.pathsep) if part)


def details_of(record: RunRecord) -> RunDetails:
    """The public view of a stored run record."""
    return RunDetails(
        execution_id=record.run_id,
        workflow_id=record.workflow_id,
        status=record.status,
        inputs=record.inputs,
        document=record.document,
        source=record.source,
        manifests=manifest_paths(record.manifest),
        started_at=record.started_at,
        parent_run_id=record.parent_run_id,
        workflow_version=record.workflow_version,
        trigger=record.trigger,
    )


def _overview_of(row: RunSummary) -> RunOverview:
    return RunOverview(
        execution_id=row.run_id,
        workflow_id=row.workflow_id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=row.duration_ms,
        error=row.error,
        nodes=dict(row.counts),
        workflow_version=row.workflow_version,
        trigger=row.trigger,
    )


def _encode_cursor(row: RunSummary) -> str:
    # Opaque to callers: the key of the last row shown. repr() keeps the float exact.
    raw = json.dumps([repr(row.started_at), row.run_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    problem = InputError(
        "not a cursor of this history (pass a page's next_cursor unchanged)", field="cursor"
    )
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started_at, run_id = json.loads(raw)
        key = (float(started_at), run_id)
    except (binascii.Error, ValueError, TypeError):
        raise problem from None
    if not isinstance(started_at, str) or not isinstance(run_id, str):
        raise problem
    if not math.isfinite(key[0]):
        raise problem
    return key
