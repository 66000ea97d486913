"""Deployed workflows: named, versioned documents in the host's store, and their triggers.

A deployment is compiled before it is kept (an invalid document is a ``CompileError`` with
every diagnostic), and kept as the canonical JSON of its model (keys sorted, no whitespace,
defaults left out): the sha256 of that text is its hash, so a document deployed again
unchanged (re-indented, keys reordered, a duration written ``60s`` instead of ``1m``) keeps its
version. Versions are numbered from 1 per workflow id and kept forever.

Every method is synchronous and may block on the store: async callers (the server) run them in
a worker thread. Reads that the server and the scheduler repeat are cheap: one indexed query,
and the parsed documents and compiled plans are cached by (id, version), which never changes.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._errors import (
    CompileError,
    PolyhostError,
    RunStateError,
    WorkflowLoadError,
    WorkflowNotFoundError,
)
from .._limits import Limits
from ..compile._compiled import CompiledWorkflow
from ..compile._loading import MANIFEST_NAME, read_document
from ..compile._parsing import parse_workflow
from ..store import DeploymentRecord, DeploymentVersion, RunStore
from ..workflow._diagnostics import Diagnostic
from ..workflow._diagnostics import DiagnosticCode as C
from ..workflow._model import Workflow
from ..workflow._triggers import ScheduleTrigger, Trigger, WebhookTrigger
from ._history import manifest_paths

if TYPE_CHECKING:
    from ._host import Host

__all__ = [
    "DEPLOYMENT_ID_PATTERN",
    "DeployedWorkflow",
    "Deployment",
    "Deployments",
    "FileFailure",
    "FolderDeployment",
    "canonical_json",
]

# A deployed workflow's id is a path segment of the HTTP API (/workflows/{id}).
DEPLOYMENT_ID_PATTERN: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
_DEPLOYMENT_ID = re.compile(DEPLOYMENT_ID_PATTERN)
WORKFLOW_SUFFIXES: Final = (".yaml", ".yml", ".json")
_MAX_MODELS: Final = 1024
_MAX_PLANS: Final = 128

_log = logging.getLogger("polyhost.deployments")
# How long a resolved deployment is reused (see Deployments.recently_resolved).
LATEST_MAX_AGE: Final = 1.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a deploy did: ``created`` is False when the document was unchanged (same hash as
    the latest version, which it keeps)."""

    id: str
    version: int
    hash: str
    created: bool

    def to_dict(self) -> dict[str, Any]:
        """``{id, version, hash, created}``."""
        return {"id": self.id, "version": self.version, "hash": self.hash, "created": self.created}


@dataclass(frozen=True, slots=True)
class DeployedWorkflow:
    """A deployed workflow: one of its versions (the latest unless another was asked for).

    ``document``, ``versions`` and ``inputs`` are filled in by :meth:`Deployments.get`;
    :meth:`Deployments.list` leaves them out.
    """

    id: str
    version: int
    latest_version: int
    hash: str
    created_at: float  # of this version
    active: bool
    deployed_at: float = 0.0  # when the workflow was last deployed (made active)
    name: str | None = None
    description: str | None = None
    triggers: tuple[Trigger, ...] = ()
    document: dict[str, Any] | None = None
    versions: tuple[DeploymentVersion, ...] = ()
    inputs: dict[str, Any] | None = None  # the inputs schema of this version

    def to_dict(self) -> dict[str, Any]:
        """:meth:`detail` when the document was read, else :meth:`summary`."""
        return self.summary() if self.document is None else self.detail()

    def summary(self) -> dict[str, Any]:
        """The JSON summary: id, version, latest_version, hash, created_at, active, name,
        description, triggers."""
        return {
            "id": self.id,
            "version": self.version,
            "latest_version": self.latest_version,
            "hash": self.hash,
            "created_at": self.created_at,
            "deployed_at": self.deployed_at,
            "active": self.active,
            "name": self.name,
            "description": self.description,
            "triggers": [trigger_dict(trigger) for trigger in self.triggers],
        }

    def detail(self) -> dict[str, Any]:
        """The summary plus document, versions (oldest first) and the inputs schema."""
        return {
            **self.summary(),
            "document": self.document,
            "versions": [
                {"version": v.version, "hash": v.hash, "created_at": v.created_at}
                for v in self.versions
            ],
            "inputs": self.inputs,
        }


@dataclass(frozen=True, slots=True)
class FileFailure:
    """A workflow file of a folder that could not be deployed, and why."""

    path: str
    message: str
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class FolderDeployment:
    """What :meth:`Deployments.deploy_folder` did, file by file."""

    deployed: tuple[tuple[str, Deployment], ...] = ()  # (path, deployment)
    failed: tuple[FileFailure, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every file was deployed."""
        return not self.failed

    def lines(self) -> list[str]:
        """One line per file, for people and logs: deployed (new version or unchanged) or
        failed, with each error diagnostic."""
        out = []
        for path, deployment in self.deployed:
            what = "deployed as version" if deployment.created else "unchanged at version"
            out.append(f"{path}: {deployment.id} {what} {deployment.version}")
        for failure in self.failed:
            out.append(f"{failure.path}: not deployed: {failure.message}")
            out += [f"  {d.render()}" for d in failure.diagnostics if d.severity == "error"]
        return out


def canonical_json(document: dict[str, Any]) -> str:
    """The text a deployment is hashed and kept as: sorted keys, no whitespace."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def trigger_dict(trigger: Trigger) -> dict[str, Any]:
    """A trigger as its document writes it (no secret: ``secret_env`` is a variable's name)."""
    return trigger.model_dump(mode="json", by_alias=True, exclude_none=True)


class Deployments:
    """The workflows deployed to a host's store (``Host.deployments``)."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, int], Workflow] = OrderedDict()
        self._plans: OrderedDict[tuple[str, int], CompiledWorkflow] = OrderedDict()
        self._manifests_loaded: set[str] = set()
        # What `resolve` found lately, by (id, version asked for): a server starting runs of
        # one workflow hundreds of times a second reads the store once per LATEST_MAX_AGE.
        self._resolved: dict[
            tuple[str, int | None], tuple[float, DeployedWorkflow, CompiledWorkflow]
        ] = {}

    # writing -------------------------------------------------------------------------------

    def deploy(
        self,
        document: dict[str, Any] | Workflow,
        workflow_id: str | None = None,
        *,
        manifests: Sequence[str] | None = None,
    ) -> Deployment:
        """Compile ``document`` and keep it as the next version of ``workflow_id`` (by default
        the document's ``id``); an unchanged document keeps its version.

        ``manifests`` (default: those a ``Workflow`` was loaded with) are recorded with the
        version, so that its runs find their node types in any process. Raises
        ``CompileError`` with every diagnostic: an invalid document, an id that differs from
        ``workflow_id`` or cannot be a URL segment, or a webhook name another deployed
        workflow already has.
        """
        store = self._store()
        if isinstance(document, Workflow):
            workflow = document
            if workflow.id is None and workflow_id is not None:
                workflow = workflow.model_copy(update={"id": workflow_id})
                workflow._manifests = document.manifests
        else:
            workflow = parse_workflow(
                document,
                default_id=workflow_id,
                limits=self._limits(),
                catalog=self._host.catalog,
                runtimes=self._host.router,
            )
        if manifests is None:
            manifests = workflow.manifests
        deploy_id = _deployment_id(workflow, workflow_id)
        compiled = self._host.compile(workflow)
        self._check_webhooks(deploy_id, workflow)
        text = canonical_json(
            workflow.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        )
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        version, created = store.deploy(
            deploy_id, text, digest, manifest=os.pathsep.join(manifests) or None
        )
        if created:  # an unchanged document keeps the version's model, plan and manifests
            with self._lock:
                _remember(self._models, (deploy_id, version), workflow, _MAX_MODELS)
                plan = replace(compiled, manifests=tuple(manifests))
                _remember(self._plans, (deploy_id, version), plan, _MAX_PLANS)
        self._forget(deploy_id)
        return Deployment(deploy_id, version, digest, created)

    def undeploy(self, workflow_id: str) -> bool:
        """Stop the workflow's triggers and hide it from :meth:`list` (its versions and its
        runs stay); False when it is not deployed."""
        self._forget(workflow_id)
        return self._store().undeploy(workflow_id)

    def deploy_folder(self, path: str | Path) -> FolderDeployment:
        """Deploy every ``*.yaml``, ``*.yml`` and ``*.json`` file of a folder (not its
        subfolders), by name order; a file's workflow id is its document's ``id``, else its
        name without the extension. A ``polyhost.toml`` in the folder is loaded first and
        recorded with each version. A file that cannot be deployed is reported in ``failed``
        and the others go on."""
        folder = Path(path)
        if not folder.is_dir():
            raise WorkflowLoadError(f"{folder}: not a folder of workflow files")
        deployed: list[tuple[str, Deployment]] = []
        failed: list[FileFailure] = []
        manifests: tuple[str, ...] = ()
        beside = folder / MANIFEST_NAME
        if beside.is_file():
            try:
                self._load_manifest(str(beside.resolve()))
                manifests = (str(beside.resolve()),)
            except PolyhostError as exc:
                failed.append(FileFailure(str(beside), exc.message))
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in WORKFLOW_SUFFIXES
        )
        for file in files:
            try:
                deployed.append((str(file), self._deploy_file(file, manifests)))
            except CompileError as exc:
                failed.append(FileFailure(str(file), exc.message, tuple(exc.diagnostics)))
            except PolyhostError as exc:
                failed.append(FileFailure(str(file), exc.message))
        return FolderDeployment(tuple(deployed), tuple(failed))

    # reading -------------------------------------------------------------------------------

    def list(self, *, include_undeployed: bool = False) -> list[DeployedWorkflow]:
        """The deployed workflows (latest versions) by id, without their documents."""
        records = self._store().list_deployments(include_undeployed=include_undeployed)
        out = []
        for record in records:
            workflow = self._model_or_none(record)
            out.append(_summary(record, workflow))
        return out

    def get(
        self, workflow_id: str, version: int | None = None, *, include_undeployed: bool = False
    ) -> DeployedWorkflow:
        """One deployed workflow with its document, every version and its triggers (of
        ``version``, by default the latest). Raises ``WorkflowNotFoundError``, also for an
        undeployed workflow unless ``include_undeployed``."""
        record = self._record(workflow_id, version, include_undeployed)
        workflow = self._model(record)
        summary = _summary(record, workflow)
        return replace(
            summary,
            document=json.loads(record.document or "{}"),
            versions=record.versions,
            inputs=workflow.inputs,
        )

    def compiled(
        self, workflow_id: str, version: int | None = None, *, include_undeployed: bool = False
    ) -> CompiledWorkflow:
        """The compiled plan of a deployed version (the latest by default), cached by (id,
        version). Raises ``WorkflowNotFoundError``, and ``CompileError`` when the catalog no
        longer has what the version needs."""
        return self.resolve(workflow_id, version, include_undeployed=include_undeployed)[1]

    def resolve(
        self, workflow_id: str, version: int | None = None, *, include_undeployed: bool = False
    ) -> tuple[DeployedWorkflow, CompiledWorkflow]:
        """A deployed version (the latest by default, without its document) and its compiled
        plan, read together so that a deploy in between cannot pair them wrongly: run it with
        ``workflow_version=`` the first's ``version``."""
        record = self._record(workflow_id, version, include_undeployed)
        workflow = self._model(record)
        key = (record.workflow_id, record.version)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
        if plan is None:
            manifests = manifest_paths(record.manifest)
            for manifest in manifests:
                self._load_manifest(manifest)
            plan = replace(self._host.compile(workflow), manifests=manifests)
            with self._lock:
                _remember(self._plans, key, plan, _MAX_PLANS)
        summary = _summary(record, workflow)
        if len(self._resolved) >= _MAX_PLANS:
            self._resolved.clear()
        self._resolved[(workflow_id, version)] = (
            time.monotonic() + LATEST_MAX_AGE,
            summary,
            plan,
        )
        return summary, plan

    def recently_resolved(
        self, workflow_id: str, version: int | None = None
    ) -> tuple[DeployedWorkflow, CompiledWorkflow] | None:
        """What :meth:`resolve` returned for the same arguments at most ``LATEST_MAX_AGE``
        seconds ago, without reading the store (None: call :meth:`resolve`). A deploy or
        undeploy through this object is seen at once; one made by another host on the same
        store within ``LATEST_MAX_AGE`` seconds."""
        found = self._resolved.get((workflow_id, version))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1], found[2]

    def _forget(self, workflow_id: str) -> None:
        for key in [k for k in self._resolved if k[0] == workflow_id]:
            self._resolved.pop(key, None)

    def find_webhook(self, name: str) -> tuple[DeployedWorkflow, WebhookTrigger] | None:
        """The active deployment with a webhook called ``name``, and that trigger (the
        first by workflow id, should two hosts have deployed the same name at once)."""
        for deployed in self.list():
            for trigger in deployed.triggers:
                if isinstance(trigger, WebhookTrigger) and trigger.webhook == name:
                    return deployed, trigger
        return None

    def schedules(self) -> builtins.list[tuple[DeployedWorkflow, ScheduleTrigger]]:
        """Every schedule of every active deployment's latest version."""
        return [
            (deployed, trigger)
            for deployed in self.list()
            for trigger in deployed.triggers
            if isinstance(trigger, ScheduleTrigger)
        ]

    # store access for the scheduler -------------------------------------------------------------

    def claim_fire(self, workflow_id: str, trigger_key: str, due_at: float, version: int) -> bool:
        """Claim one due time of a schedule for this host; True when the claim counted."""
        return self._store().claim_fire(workflow_id, trigger_key, due_at, version=version)

    def record_fire_run(
        self, workflow_id: str, trigger_key: str, due_at: float, run_id: str
    ) -> None:
        """Note the run a claimed fire started."""
        self._store().record_fire_run(workflow_id, trigger_key, due_at, run_id)

    # internals -------------------------------------------------------------------------------

    def _store(self) -> RunStore:
        store = self._host.store
        if store is None:
            raise RunStateError("this host runs without a store, so it cannot keep deployments")
        return store

    def _record(
        self, workflow_id: str, version: int | None, include_undeployed: bool
    ) -> DeploymentRecord:
        record = self._store().get_deployment(workflow_id, version)
        if not record.active and not include_undeployed:
            raise WorkflowNotFoundError(f"workflow {workflow_id!r} is not deployed (undeployed)")
        return record

    def _model(self, record: DeploymentRecord) -> Workflow:
        key = (record.workflow_id, record.version)
        with self._lock:
            found = self._models.get(key)
        if found is not None:
            return found
        if record.document is None:
            record = self._store().get_deployment(record.workflow_id, record.version)
        raw = json.loads(record.document or "{}")
        workflow = parse_workflow(raw, default_id=record.workflow_id, limits=self._limits())
        with self._lock:
            _remember(self._models, key, workflow, _MAX_MODELS)
        return workflow

    def _model_or_none(self, record: DeploymentRecord) -> Workflow | None:
        try:
            return self._model(record)
        except CompileError as exc:
            # A version this polyhost cannot read (written by a newer one): listed, no triggers.
            _log.warning(
                "deployed workflow %s version %d cannot be read: %s",
                record.workflow_id,
                record.version,
                exc.message,
            )
            return None

    def _limits(self) -> Limits:
        return self._host.config.limits

    def _check_webhooks(self, deploy_id: str, workflow: Workflow) -> None:
        mine = {
            t.webhook: i for i, t in enumerate(workflow.triggers) if isinstance(t, WebhookTrigger)
        }
        if not mine:
            return
        problems = []
        for deployed in self.list():
            if deployed.id == deploy_id:
                continue
            for trigger in deployed.triggers:
                if isinstance(trigger, WebhookTrigger) and trigger.webhook in mine:
                    problems.append(
                        Diagnostic(
                            "error",
                            C.DUPLICATE_ID,
                            f"the webhook name '{trigger.webhook}' is taken by the deployed "
                            f"workflow '{deployed.id}'",
                            None,
                            f"triggers[{mine[trigger.webhook]}].webhook",
                        )
                    )
        if problems:
            raise CompileError(problems)

    def _deploy_file(self, file: Path, manifests: tuple[str, ...]) -> Deployment:
        raw, problems = read_document(file, self._limits())
        if problems:
            raise CompileError(problems)
        found = raw.get("id") if isinstance(raw, dict) else None
        workflow_id = found if isinstance(found, str) and found else file.stem
        return self.deploy(raw, workflow_id, manifests=manifests)

    def _load_manifest(self, path: str) -> None:
        with self._lock:
            if path in self._manifests_loaded:
                return
        if Path(path).is_file():
            self._host.catalog.load_manifest(path)
        with self._lock:
            self._manifests_loaded.add(path)


def _deployment_id(workflow: Workflow, workflow_id: str | None) -> str:
    own = workflow.id
    if workflow_id is not None and own is not None and own != workflow_id:
        raise CompileError(
            [
                Diagnostic(
                    "error",
                    C.INVALID_VALUE,
                    f"the document's id is '{own}', not '{workflow_id}', the id it is deployed "
                    f"as (change one, or leave the document's id out)",
                    None,
                    "id",
                )
            ]
        )
    chosen = workflow_id or own
    if chosen is None:
        raise CompileError(
            [
                Diagnostic(
                    "error",
                    C.MISSING_FIELD,
                    "a deployed workflow needs an id: give one, or set the document's id",
                    None,
                    "id",
                )
            ]
        )
    if _DEPLOYMENT_ID.match(chosen) is None:
        raise CompileError(
            [
                Diagnostic(
                    "error",
                    C.INVALID_VALUE,
                    f"a deployed workflow's id is 1 to 100 letters, digits, '_', '.' or '-' "
                    f"(not starting with '.' or '-'), found {chosen[:120]!r}",
                    None,
                    "id",
                )
            ]
        )
    return chosen


def _summary(record: DeploymentRecord, workflow: Workflow | None) -> DeployedWorkflow:
    return DeployedWorkflow(
        id=record.workflow_id,
        version=record.version,
        latest_version=record.latest_version or record.version,
        hash=record.hash,
        created_at=record.created_at,
        active=record.active,
        deployed_at=record.deployed_at,
        name=None if workflow is None else workflow.name,
        description=None if workflow is None else workflow.description,
        triggers=() if workflow is None else tuple(workflow.triggers),
    )


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
