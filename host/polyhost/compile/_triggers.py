"""The checks of a workflow's triggers that need more than the model: webhook names unique
within the workflow, webhook input templates that parse and read only ``request``, and
schedule inputs that are fixed values fitting the workflow's inputs schema (a schedule whose
runs would all be refused is an error when it is deployed, not every time it falls due)."""

from __future__ import annotations

from typing import Any, Final

from .._errors import ExpressionError, InputError
from .._limits import Limits
from ..workflow._diagnostics import Diagnostic
from ..workflow._diagnostics import DiagnosticCode as C
from ..workflow._triggers import ScheduleTrigger, Trigger, WebhookTrigger
from ._expressions import compile_template, diagnose
from ._inputs import InputsSchema

__all__ = ["REQUEST_NAME", "check_triggers"]

# The one name a webhook's input templates read: {json, headers, query} of the request.
REQUEST_NAME: Final = "request"


def check_triggers(
    triggers: list[Trigger], inputs: InputsSchema, limits: Limits
) -> list[Diagnostic]:
    """Every problem of ``triggers`` the model cannot see, each naming ``triggers[i]...``."""
    found: list[Diagnostic] = []
    names: dict[str, int] = {}
    for index, trigger in enumerate(triggers):
        where = f"triggers[{index}]"
        if isinstance(trigger, WebhookTrigger):
            first = names.setdefault(trigger.webhook, index)
            if first != index:
                found.append(
                    _error(
                        C.DUPLICATE_ID,
                        f"the webhook name '{trigger.webhook}' is taken by triggers[{first}]",
                        f"{where}.webhook",
                    )
                )
            found += _check_webhook_inputs(trigger, where, limits)
        elif isinstance(trigger, ScheduleTrigger):
            found += _check_schedule_inputs(trigger, where, inputs, limits)
    return found


def _check_webhook_inputs(trigger: WebhookTrigger, where: str, limits: Limits) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for key, value in (trigger.inputs or {}).items():
        field = f"{where}.inputs.{key}"
        try:
            template = compile_template(value, limits)
        except ExpressionError as exc:
            code, message = diagnose(exc)
            found.append(_error(code, message, field))
            continue
        for expression in template.expressions():
            for name in sorted(expression.references - {REQUEST_NAME}):
                found.append(
                    _error(
                        C.UNKNOWN_REFERENCE,
                        f"a webhook's inputs read only request (request.json, "
                        f"request.headers, request.query), not '{name}'",
                        field,
                    )
                )
    return found


def _check_schedule_inputs(
    trigger: ScheduleTrigger, where: str, inputs: InputsSchema, limits: Limits
) -> list[Diagnostic]:
    values: dict[str, Any] = trigger.inputs or {}
    try:
        fixed = compile_template(values, limits).is_constant
    except ExpressionError:
        fixed = False
    if not fixed:
        return [
            _error(
                C.INVALID_VALUE,
                "a schedule's inputs are fixed values; templates are for webhooks",
                f"{where}.inputs",
            )
        ]
    if inputs.problems:
        return []  # reported against the schema itself
    try:
        inputs.prepare(values, limits)
    except InputError as exc:
        return [
            _error(
                C.INVALID_VALUE,
                f"every run this schedule starts would be refused: {exc.message}",
                f"{where}.inputs",
            )
        ]
    return []


def _error(code: str, message: str, field: str) -> Diagnostic:
    return Diagnostic("error", code, message, None, field)
