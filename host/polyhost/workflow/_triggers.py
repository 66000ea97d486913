"""What starts a deployed workflow besides a person: schedules and webhooks (spec section 1,
"Triggers").

A schedule is a cron expression read by cronsim (healthchecks.io's evaluator: Debian cron's
rules, daylight-saving changes included; see docs/triggers.md), in UTC unless ``tz`` names an
IANA zone. A webhook is a name under ``POST /api/v1/hooks/NAME``, with an optional HMAC secret
read from the environment. Both are checked when the document is read, so a bad expression,
zone or name is a diagnostic naming ``triggers[i].<field>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_TRIGGERS",
    "WEBHOOK_NAME_PATTERN",
    "ScheduleTrigger",
    "Trigger",
    "WebhookTrigger",
    "trigger_kind",
    "without_tag",
]

WEBHOOK_NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,100}$"
# Each schedule is read, and looked at every second by a server: a workflow has a few.
MAX_TRIGGERS: Final = 100
_WEBHOOK_NAME = re.compile(WEBHOOK_NAME_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MAX_CRON_CHARS: Final = 200
# The nicknames most crons accept, as the five fields they stand for.
_NICKNAMES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_KINDS: Final = ("schedule", "webhook")
# A look for due times walks at most this many of them (a seconds schedule over a long window).
MAX_DUE_TIMES: Final = 10_000


class _Strict(BaseModel):
    # The workflow model's rules (see _model._Strict): unknown keys are errors, no coercion.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class ScheduleTrigger(_Strict):
    """Starts a run at every time a cron expression names."""

    schedule: str = Field(
        description="cron: five fields (minute hour day month weekday), or six with seconds "
        "first; @hourly, @daily, @weekly, @monthly, @yearly"
    )
    tz: str | None = Field(None, description="IANA time zone (Europe/Paris); UTC by default")
    inputs: dict[str, Any] | None = Field(None, description="the inputs of every run it starts")

    @field_validator("schedule")
    @classmethod
    def _is_cron(cls, value: str) -> str:
        if len(value) > _MAX_CRON_CHARS:
            raise PydanticCustomError(
                "invalid_value",
                "a cron expression has at most {limit} characters",
                {"limit": _MAX_CRON_CHARS},
            )
        try:
            first = next(CronSim(_expand(value), datetime.now(UTC)), None)
        except (CronSimError, ValueError, OverflowError) as exc:
            raise PydanticCustomError(
                "invalid_value",
                "not a cron expression: {reason} (five fields: minute hour day month "
                "weekday, or six with seconds first)",
                {"reason": _lower_first(str(exc)) or "cannot be read"},
            ) from None
        if first is None:
            raise PydanticCustomError(
                "invalid_value", "the schedule never falls due in the next 50 years", {}
            )
        return value

    @field_validator("tz")
    @classmethod
    def _is_zone(cls, value: str | None) -> str | None:
        if value is not None and _zone(value) is None:
            raise PydanticCustomError(
                "invalid_value",
                "no time zone {name} (an IANA name such as UTC, Europe/Paris, America/New_York)",
                {"name": repr(value[:120])},
            )
        return value

    @property
    def zone(self) -> tzinfo:
        """The zone the expression is read in."""
        return (None if self.tz is None else _zone(self.tz)) or UTC

    @property
    def key(self) -> str:
        """What tells this schedule from the workflow's others in the store's record of fires:
        the expression, the zone and the inputs, so the same schedule keeps its key across
        versions of the workflow (and fires once per due time while a new version replaces an
        old one), and two schedules differing only in their inputs both fire."""
        inputs = json.dumps(self.inputs, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(inputs.encode()).hexdigest()[:12]
        return f"schedule:{self.schedule.strip()}@{self.tz or 'UTC'}#{digest}"

    def due_times(self, after: float, until: float, *, limit: int = MAX_DUE_TIMES) -> list[float]:
        """The due times ``t`` with ``after < t <= until`` (epoch seconds), oldest first; at
        most ``limit`` of them (the latest ones are dropped past it)."""
        if until <= after:
            return []
        times: list[float] = []
        walker = CronSim(_expand(self.schedule), datetime.fromtimestamp(after, self.zone))
        for moment in walker:
            when = moment.timestamp()
            if when > until or len(times) >= limit:
                break
            if when > after:
                times.append(when)
        return times


class WebhookTrigger(_Strict):
    """Starts a run for each ``POST /api/v1/hooks/NAME``."""

    webhook: str = Field(description="the name in the URL: [A-Za-z0-9_.-], 1 to 100 characters")
    secret_env: str | None = Field(
        None,
        description="an environment variable holding the HMAC secret; requests must then "
        "carry X-Polyhost-Signature: sha256=HMAC(body)",
    )
    inputs: dict[str, Any] | None = Field(
        None,
        description="the run's inputs, templates reading request.json, request.headers and "
        "request.query; by default the JSON body is the inputs",
    )

    @field_validator("webhook")
    @classmethod
    def _is_name(cls, value: str) -> str:
        if _WEBHOOK_NAME.match(value) is None:
            raise PydanticCustomError(
                "invalid_value",
                "a webhook name is 1 to 100 letters, digits, '_', '.' or '-', found {found}",
                {"found": repr(value[:120])},
            )
        return value

    @field_validator("secret_env")
    @classmethod
    def _is_env_name(cls, value: str | None) -> str | None:
        if value is not None and _ENV_NAME.match(value) is None:
            raise PydanticCustomError(
                "invalid_value",
                "secret_env names an environment variable ([A-Za-z_][A-Za-z0-9_]*), found {found}",
                {"found": repr(value[:120])},
            )
        return value


def trigger_kind(value: Any) -> str | None:
    """Which trigger a document's entry is: by the key it has (``schedule`` or ``webhook``)."""
    if isinstance(value, ScheduleTrigger):
        return "schedule"
    if isinstance(value, WebhookTrigger):
        return "webhook"
    if isinstance(value, dict):
        kinds = [kind for kind in _KINDS if kind in value]
        if len(kinds) == 1:
            return kinds[0]
    return None


def without_tag(loc: list[Any]) -> list[Any]:
    """A validation error's key path without the trigger kind pydantic inserts after a
    trigger's index (``triggers, 0, schedule, tz`` is ``triggers[0].tz``)."""
    if len(loc) >= 4 and loc[0] == "triggers" and isinstance(loc[1], int) and loc[2] in _KINDS:
        return loc[:2] + loc[3:]
    return loc


Trigger = Annotated[
    Annotated[ScheduleTrigger, Tag("schedule")] | Annotated[WebhookTrigger, Tag("webhook")],
    Discriminator(
        trigger_kind,
        custom_error_type="invalid_value",
        custom_error_message="a trigger is a mapping with either schedule or webhook (not both)",
        custom_error_context={},
    ),
]


def _zone(name: str) -> tzinfo | None:
    # The system's zone database, else the tzdata package's (a dependency, so that zones
    # exist on every machine); None for a name neither knows.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _expand(expression: str) -> str:
    text = expression.strip()
    return _NICKNAMES.get(text.lower(), text)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
