"""Running the triggers of deployed workflows: the schedule loop and the webhook helpers.

:class:`Scheduler` looks at every active deployment's schedules once a second, claims each due
time in the store (one host of all those sharing it wins each) and starts a run through a
callback the server gives it. The missed-fire policy is in :meth:`Scheduler.tick` and
docs/triggers.md. The webhook helpers check a request's signature and turn a request into run
inputs; the server calls them, and HTTP stays in the server.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread

from .._errors import ExpressionError, InputError, LimitExceededError, PolyhostError
from .._limits import Limits, default_limits
from ..compile._expressions import Scope, compile_template
from ..compile._triggers import REQUEST_NAME
from ..events._redaction import known
from ..workflow._triggers import ScheduleTrigger, WebhookTrigger
from ._deployments import Deployments

__all__ = [
    "SIGNATURE_HEADER",
    "Fire",
    "Scheduler",
    "StartRun",
    "verify_signature",
    "webhook_inputs",
]

SIGNATURE_HEADER: Final = "x-polyhost-signature"
_SIGNATURE_PREFIX: Final = "sha256="
# Headers a webhook's templates never see: credentials must not reach a run's inputs (and so
# its history).
_HIDDEN_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})

_log = logging.getLogger("polyhost.triggers")


class StartRun(Protocol):
    """Starts a run of a deployed version; returns its run id (recorded with the fire) or
    None. It should return once the run is under way, not when it ends."""

    async def __call__(
        self,
        workflow_id: str,
        version: int,
        inputs: dict[str, Any],
        *,
        trigger: str = "schedule",
    ) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Fire:
    """One due time of one schedule that this scheduler claimed."""

    workflow_id: str
    version: int
    trigger_key: str
    due_at: float
    inputs: dict[str, Any]


class Scheduler:
    """Fires the schedules of deployed workflows, once per due time across every host that
    shares the store.

    Each look (one every ``every`` seconds) takes the due times since the previous look. Due
    times missed while no scheduler looked (no host ran, or this one was held up for longer
    than a few looks) are not replayed: of those, only the latest fires, once, and only when
    it is at most ``grace`` seconds old. A due time before the workflow was deployed (or
    deployed again after an undeploy) never fires. ``clock`` gives the time (epoch seconds).
    """

    def __init__(
        self,
        deployments: Deployments,
        start: StartRun,
        *,
        every: float = 1.0,
        grace: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (every > 0 and math.isfinite(every)):
            raise InputError(f"every is a positive number of seconds, not {every}", field="every")
        if not (grace >= 0 and math.isfinite(grace)):
            raise InputError(f"grace is a number of seconds, not {grace}", field="grace")
        self._deployments = deployments
        self._start = start
        self.every = every
        self.grace = grace
        self._clock = clock
        self._last_look: float | None = None
        self._watched: set[str] = set()  # workflows whose schedules the last look took
        self._stop_requested = False
        self._wake: anyio.Event | None = None

    @property
    def held_up_after(self) -> float:
        """A gap between two looks longer than this counts as time no scheduler looked."""
        return max(5 * self.every, 5.0)

    async def run(self) -> None:
        """Look every ``every`` seconds until :meth:`stop` (or cancellation), then wait for
        the starts under way. Nothing a look or a start does ends the loop: failures are
        logged."""
        self._wake = anyio.Event()
        async with anyio.create_task_group() as starts:
            while not self._stop_requested:
                try:
                    fires = await self.tick()
                except PolyhostError as exc:
                    _log.error("schedules: cannot look at the deployments: %s", exc.message)
                    fires = []
                except Exception:  # a look that fails must not end the schedules
                    _log.exception("schedules: the look at the deployments failed")
                    fires = []
                for fire in fires:
                    # Each start in its own task: a slow one delays no other fire.
                    starts.start_soon(self._fire, fire)
                with anyio.move_on_after(self.every):
                    await self._wake.wait()

    def stop(self) -> None:
        """End :meth:`run` after the current look (called on its event loop; before
        :meth:`run` started, it makes :meth:`run` return at once)."""
        self._stop_requested = True
        if self._wake is not None:
            self._wake.set()

    async def tick(self) -> list[Fire]:
        """One look: the fires due since the previous look that this scheduler claimed (it
        does not start them; :meth:`run` does)."""
        now = self._clock()
        schedules = await anyio.to_thread.run_sync(self._deployments.schedules)
        # Only a look that read the schedules counts: after one that could not, the next
        # takes the due times since the last that did.
        previous, self._last_look = self._last_look, now
        held_up = previous is None or now - previous > self.held_up_after
        watched, self._watched = self._watched, {deployed.id for deployed, _ in schedules}
        won: list[Fire] = []
        for deployed, trigger in schedules:
            floor = now - self.grace
            if previous is not None and not held_up:
                floor = max(floor, previous)
            if held_up or deployed.id not in watched:
                # A first look, or a workflow deployed since the last: nothing due before its
                # deployment fires.
                floor = max(floor, deployed.deployed_at)
            due = trigger.due_times(floor, now)
            if held_up:
                due = due[-1:]  # missed fires are not replayed: the latest only
            for due_at in due:
                fire = Fire(deployed.id, deployed.version, trigger.key, due_at, _inputs(trigger))
                if await self._claim(fire):
                    won.append(fire)
        return won

    async def _claim(self, fire: Fire) -> bool:
        try:
            return await anyio.to_thread.run_sync(
                self._deployments.claim_fire,
                fire.workflow_id,
                fire.trigger_key,
                fire.due_at,
                fire.version,
            )
        except PolyhostError as exc:
            _log.error(
                "schedule of %s due at %s: cannot claim it: %s",
                fire.workflow_id,
                _when(fire.due_at),
                exc.message,
            )
            return False

    async def _fire(self, fire: Fire) -> None:
        try:
            run_id = await self._start(
                fire.workflow_id, fire.version, fire.inputs, trigger="schedule"
            )
            if run_id is not None:
                await anyio.to_thread.run_sync(
                    self._deployments.record_fire_run,
                    fire.workflow_id,
                    fire.trigger_key,
                    fire.due_at,
                    run_id,
                )
        except Exception as exc:  # a failing start must not end the loop
            # Masked like every message of a run: a start's error may quote a secret.
            message = known().text(exc.message if isinstance(exc, PolyhostError) else repr(exc))
            _log.error(
                "schedule of %s version %d due at %s: the run did not start: %s",
                fire.workflow_id,
                fire.version,
                _when(fire.due_at),
                message,
            )


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha256=`` and the hex HMAC-SHA256 of ``body`` under
    ``secret`` (GitHub's convention), compared in constant time; False when it is missing,
    malformed or wrong."""
    if not header:
        return False
    prefix, _, digest = header.strip().partition("=")
    if f"{prefix.lower()}=" != _SIGNATURE_PREFIX:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), digest.lower().encode("utf-8"))


def webhook_inputs(
    trigger: WebhookTrigger,
    body_json: Any,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """A webhook request's run inputs: the trigger's ``inputs`` templates evaluated with
    ``request`` = ``{json, headers, query}`` (header names lower-cased; a whole-string
    ``{{ expr }}`` keeps the value's type), or, without ``inputs``, the JSON body itself.

    Raises ``InputError`` (naming the input) when a template cannot be evaluated against this
    request or the body is not a JSON object where one is needed; the run's inputs schema is
    checked afterwards, when the run starts.
    """
    lim = limits or default_limits()
    if trigger.inputs is None:
        if body_json is None:
            return {}
        if not isinstance(body_json, dict):
            raise InputError(
                f"webhook {trigger.webhook}: the body is the run's inputs, so it must be a "
                f"JSON object, not {_json_kind(body_json)}",
                field="body",
            )
        return body_json
    scope = Scope(lim.max_value_depth)
    request = {
        "json": body_json,
        "headers": {
            name.lower(): value
            for name, value in headers.items()
            if name.lower() not in _HIDDEN_HEADERS
        },
        "query": dict(query),
    }
    try:
        scope.set(REQUEST_NAME, request)
    except (ExpressionError, LimitExceededError, TypeError) as exc:
        reason = exc.message if isinstance(exc, PolyhostError) else str(exc)
        raise InputError(
            f"webhook {trigger.webhook}: the input templates cannot read this request: {reason}",
            field="body",
        ) from None
    inputs: dict[str, Any] = {}
    for key, value in trigger.inputs.items():
        try:
            inputs[key] = compile_template(value, lim).resolve(scope)
        except ExpressionError as exc:
            raise InputError(
                f"webhook {trigger.webhook}: input '{key}': {exc.message}", field=f"inputs.{key}"
            ) from None
    return inputs


def _inputs(trigger: ScheduleTrigger) -> dict[str, Any]:
    # A fresh copy per fire: a run may not change the trigger's own values.
    return {key: _copy(value) for key, value in (trigger.inputs or {}).items()}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
