"""The interface between the engine, the host and a run store (SQLite by default).

:class:`RunStore` is the whole contract: a backend that passes the contract suite
(``tests/store``) can stand in for SQLite everywhere a store is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from .._errors import StoreError
from ..events._events import Event
from ..events._result import NodeResult, RunResult, RunStatus

__all__ = [
    "ClaimCheck",
    "ClaimedRun",
    "DeploymentRecord",
    "DeploymentVersion",
    "LeaseState",
    "Owner",
    "RunRecord",
    "RunStore",
    "RunSummary",
]


@dataclass(frozen=True, slots=True)
class Owner:
    """The host process that executes a run and holds its lease."""

    host_id: str  # unique per Host object (a new id every process start)
    hostname: str  # socket.gethostname()
    pid: int


@dataclass(slots=True)
class RunRecord:
    """What a store needs to know when a run starts (and to re-run it later)."""

    run_id: str
    workflow_id: str
    status: RunStatus
    inputs: dict[str, Any]
    document: dict[str, Any]
    source: str | None = None
    manifest: str | None = None
    started_at: float = 0.0
    parent_run_id: str | None = None
    owner: Owner | None = None  # a new run is owned from its first write
    lease_seconds: float = 15.0
    workflow_version: int | None = None  # the deployed version it runs, if deployed
    trigger: str = "manual"  # what started it: one of RUN_TRIGGERS (events._result)


@dataclass(slots=True)
class RunSummary:
    """One row of the history."""

    run_id: str
    workflow_id: str
    status: RunStatus
    started_at: float
    finished_at: float | None
    duration_ms: float | None
    error: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    workflow_version: int | None = None
    trigger: str = "manual"


@dataclass(frozen=True, slots=True)
class DeploymentVersion:
    """One version of a deployed workflow (every version is kept)."""

    version: int
    hash: str  # sha256 of the document's canonical JSON
    created_at: float


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployed workflow as the store keeps it: its latest version, or the one asked for.

    ``document`` (JSON text) and ``versions`` (oldest first) are filled in by
    ``get_deployment``; ``list_deployments`` leaves them empty, so that a look at every
    deployment stays cheap.
    """

    workflow_id: str
    version: int
    hash: str
    created_at: float  # of this version
    active: bool  # False once undeployed (until deployed again)
    document: str | None = None
    manifest: str | None = None  # the manifests it was deployed with, joined by os.pathsep
    versions: tuple[DeploymentVersion, ...] = ()
    latest_version: int = 0  # the newest version, whichever one this record shows
    deployed_at: float = 0.0  # when the workflow was last deployed (made active)


@dataclass(frozen=True, slots=True)
class LeaseState:
    """What renewing a lease tells the owner."""

    still_owner: bool  # False: another host took the run over (the lease had expired)
    cancel_requested: bool  # someone asked (from any process) to cancel the run


@dataclass(slots=True)
class ClaimedRun:
    """A run just claimed, with what continuing it needs, read in the claim's transaction."""

    record: RunRecord
    nodes: dict[str, NodeResult]  # as load_nodes gives them
    last_seq: int  # the sequence number of the run's last event (0: none)
    # Equal for equal stored documents (SQLite: the document's JSON text): a host keys its
    # compiled plans on it instead of parsing the document again.
    document_key: str
    # Set when the node rows cannot be read: the run is claimed all the same, and cannot go on.
    unreadable: StoreError | None = None


# What a claim checks first, inside its transaction: the run's status and what it waits for
# (its pause). What the check raises is raised by the claim, which then changes nothing.
ClaimCheck = Callable[[RunStatus, dict[str, Any] | None], None]


@runtime_checkable
class RunStore(Protocol):
    """Where runs, node results and events are kept.

    The ``record_*`` methods (and ``release_run``, ``record_pause``) are called on the event
    loop and must not block: a store queues them and writes in the background, in order per
    run. ``flush`` waits until all queued writes are committed and raises ``StoreError`` for a
    queued write that failed since the last flush. The read and control methods are
    synchronous and may block; async callers run them in a worker thread.

    Every method taking a ``run_id`` (except the ``record_*`` ones, which name a run exactly)
    accepts a unique prefix of one, and raises ``RunNotFoundError`` for an unknown id (code
    ``ambiguous_run_id`` when several runs match). A closed store raises ``StoreError``.
    """

    def record_run_started(self, record: RunRecord) -> None:
        """A run began (or resumed)."""
        ...

    def record_event(self, event: Event) -> None:
        """An event of a run."""
        ...

    def record_node(self, run_id: str, node_id: str, result: NodeResult) -> None:
        """A node reached a new status (the latest record per node wins)."""
        ...

    def record_run_finished(self, result: RunResult) -> None:
        """A run ended (completed, failed, cancelled) or paused; the full result object."""
        ...

    async def flush(self) -> None:
        """Wait until every queued write is committed."""
        ...

    def list_runs(
        self,
        *,
        limit: int = 50,
        status: RunStatus | None = None,
        workflow_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[RunSummary]:
        """The most recent runs first (by ``started_at``, then ``run_id``, descending);
        ``limit <= 0``: all.

        ``since <= started_at < until`` when given. ``before`` is the (started_at, run_id) of
        a row already shown: only the rows after it in this order (keyset paging, so runs
        started since do not shift later pages).
        """
        ...

    def get_result(self, run_id: str) -> RunResult:
        """A run's result object (for a run still going: what is known so far).

        Raises ``RunNotFoundError``.
        """
        ...

    def get_record(self, run_id: str) -> RunRecord:
        """What the run started with. Raises ``RunNotFoundError``."""
        ...

    def events(self, run_id: str, *, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """A run's events with ``seq > after_seq`` in sequence order; at most ``limit``."""
        ...

    def resolve_id(self, run_id: str) -> str:
        """The full id of the one run whose id is ``run_id`` or starts with it (an exact id
        wins over longer ids it prefixes).

        Raises ``RunNotFoundError``, or ``AmbiguousRunIdError`` (naming some of the
        candidates) when several runs start with ``run_id``.
        """
        ...

    def close(self) -> None:
        """Flush what is queued and close; idempotent. Raises ``StoreError`` when a queued
        write failed."""
        ...

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        ...

    def change_mark(self) -> object:
        """A cheap value that changes whenever anything commits to the store, from any process
        (equal marks: nothing new; a changed one may be a false alarm). Streams of runs that
        execute elsewhere look at it often instead of querying."""
        ...

    def __enter__(self) -> Self:
        """The store itself; leaving the block closes it."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        ...

    # Durable runs: ownership, cancellation, pauses. These are synchronous, commit at once
    # (not through the queue) and are safe across processes sharing the database.

    def claim_run(
        self, run_id: str, owner: Owner, lease_seconds: float, *, statuses: tuple[RunStatus, ...]
    ) -> RunRecord:
        """Make ``owner`` the run's owner, atomically, and return its record.

        Succeeds when the run's status is in ``statuses`` and it has no live owner: no owner,
        an expired lease, ``owner`` itself, or an owner on this machine (same hostname) whose
        pid is no longer alive. Sets status running, clears ``wake_at`` and the cancel flag.
        Raises ``RunNotFoundError`` or ``RunStateError`` (naming the status or the live owner).
        """
        ...

    def renew_lease(self, run_id: str, owner: Owner, lease_seconds: float) -> LeaseState:
        """Extend the lease if ``owner`` still holds it; report a requested cancel."""
        ...

    def release_run(self, run_id: str, owner: Owner) -> None:
        """Drop ownership (queued, in order with the run's other writes)."""
        ...

    def request_cancel(self, run_id: str) -> RunStatus:
        """Ask for a run to be cancelled; returns its status after the request.

        A running run gets the cancel flag (its owner cancels it on its next renewal); a paused
        or pending run, which no process holds, is marked cancelled at once. A finished run is
        a ``RunStateError``.
        """
        ...

    def record_pause(self, run_id: str, pause: dict[str, Any], wake_at: float | None) -> None:
        """A run paused (queued): what it waits for, and when its timer falls due, if any."""
        ...

    def load_nodes(self, run_id: str) -> dict[str, NodeResult]:
        """Every node row of the run, with outputs, ports and settle order."""
        ...

    def due_runs(self, now: float) -> list[str]:
        """Paused runs whose timer is due, and running runs whose owner's lease has expired."""
        ...

    # Deployed workflows and the fires of their schedules. Synchronous, committed at once and
    # safe across processes sharing the database, like the durable-run controls.

    def deploy(
        self, workflow_id: str, document: str, hash: str, *, manifest: str | None = None
    ) -> tuple[int, bool]:
        """Keep ``document`` (JSON text, whose sha256 is ``hash``) as the next version of
        ``workflow_id`` and make the workflow active; returns ``(version, created)``.

        A document with the hash of the latest version keeps that version (``created`` is
        False), and an undeployed workflow becomes active again either way.
        """
        ...

    def list_deployments(self, *, include_undeployed: bool = False) -> list[DeploymentRecord]:
        """Every deployed workflow's latest version, by id (without documents)."""
        ...

    def get_deployment(self, workflow_id: str, version: int | None = None) -> DeploymentRecord:
        """One version (by default the latest) with its document, and every version listed;
        undeployed workflows too (``active`` False). Raises ``WorkflowNotFoundError``."""
        ...

    def undeploy(self, workflow_id: str) -> bool:
        """Stop a workflow's triggers and hide it from the deployed ones, keeping its versions;
        False when it is not deployed (unknown, or already undeployed)."""
        ...

    def claim_fire(
        self, workflow_id: str, trigger_key: str, due_at: float, *, version: int | None = None
    ) -> bool:
        """Claim one due time of one schedule: True for the one caller, among every process
        sharing the store, whose claim counted; False for all the others. ``due_at`` is kept
        to the second."""
        ...

    def record_fire_run(
        self, workflow_id: str, trigger_key: str, due_at: float, run_id: str
    ) -> None:
        """Note the run a claimed fire started."""
        ...

    # Continuing a run (resume, retry, takeover) in one call: one transaction, one round trip.

    def claim_and_load(
        self,
        run_id: str,
        owner: Owner,
        lease_seconds: float,
        *,
        statuses: tuple[RunStatus, ...],
        check: ClaimCheck | None = None,
    ) -> ClaimedRun:
        """:meth:`claim_run`, reading in the same transaction what continuing the run needs:
        its node rows (as :meth:`load_nodes`) and the sequence number of its last event.

        ``check(status, pause)`` runs first, before the claim's own checks; what it raises is
        raised here and the run stays as it was. Node rows that cannot be read do not undo the
        claim: they are reported in ``unreadable``. Raises ``RunNotFoundError`` or
        ``RunStateError`` like :meth:`claim_run`.
        """
        ...
