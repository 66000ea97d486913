"""What a call's outcome means: the guest's output parsed, and failures as stable codes."""

from __future__ import annotations

import json
from typing import Any

from wasmtime import Trap, WasmtimeError

from ..._codes import user_code, user_field
from ._limits import WasmLimits

__all__ = [
    "GuestFailure",
    "command_result",
    "exited",
    "reactor_result",
    "resource_limit",
    "summary",
    "timeout",
    "too_large",
    "trap_kind",
]

_MESSAGE_CHARS = 4096


class GuestFailure(Exception):
    """The call failed; ``code`` is one of the runtime's stable error codes."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retryable = retryable


def reactor_result(raw: bytes | bytearray) -> dict[str, Any]:
    value = _json(raw, "polyhost_run's result")
    if isinstance(value, dict) and len(value) == 1:
        if isinstance(value.get("ok"), dict):
            ok: dict[str, Any] = value["ok"]
            return ok
        if "error" in value:
            raise _guest_error(value["error"])
    raise GuestFailure(
        "wasm_invalid_output",
        'polyhost_run must return {"ok": {...}} or {"error": {"code", "message"}}, got '
        + _preview(value),
    )


def command_result(raw: bytes, status: int, stderr: str) -> dict[str, Any]:
    value = _json(raw, "stdout") if raw.strip() or status == 0 else None
    if isinstance(value, dict) and list(value) == ["error"] and isinstance(value["error"], dict):
        raise _guest_error(value["error"])
    if status != 0:
        raise exited(status, stderr)
    if not isinstance(value, dict):
        raise GuestFailure(
            "wasm_invalid_output", "stdout must be one JSON object, got " + _preview(value)
        )
    return value


def exited(status: int, stderr: str) -> GuestFailure:
    message = f"the module exited with status {status}"
    return GuestFailure("wasm_exit", f"{message}: {stderr}" if stderr else message)


def _json(raw: bytes | bytearray, what: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise GuestFailure("wasm_invalid_output", f"{what} is not JSON: {exc}") from None


def _guest_error(error: Any) -> GuestFailure:
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = error.get("message")
    text = str(message)[:_MESSAGE_CHARS] if message is not None else "the guest reported an error"
    given = error.get("code")
    code, note = user_code(given, "wasm_error") if given is not None else ("wasm_error", "")
    field, field_note = user_field(error.get("field"))
    return GuestFailure(code, text + note + field_note, field=field, retryable=True)


def _preview(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def too_large(size: int, limit: int) -> GuestFailure:
    return GuestFailure(
        "wasm_output_too_large",
        f"the output is {size} bytes, over limits.output ({limit} bytes)",
        field="limits.output",
    )


_RESOURCES = {
    "exceeds table limits": "table_elements",
    "table count": "tables",
    "memory count": "memories",
    "instance count": "instances",
}


def resource_limit(text: str, limits: WasmLimits) -> GuestFailure | None:
    """The instantiation failure of a module that needs more tables, memories or instances,
    or of a call that found every slot of the instance pool taken (retryable)."""
    if "maximum concurrent limit" in text:
        return GuestFailure(
            "wasm_resource_limit",
            "every instance slot of the wasm runtime is in use; try again",
            retryable=True,
        )
    for phrase, name in _RESOURCES.items():
        if phrase in text:
            return GuestFailure(
                "wasm_resource_limit",
                f"the module needs more than limits.{name} ({getattr(limits, name)}) allows",
                field=f"limits.{name}",
            )
    return None


def timeout(limits: WasmLimits) -> GuestFailure:
    return GuestFailure(
        "wasm_timeout",
        f"the guest ran past limits.timeout ({limits.timeout:g}s)",
        field="limits.timeout",
        retryable=True,
    )


def trap_kind(trap: Trap | WasmtimeError) -> str:
    """The trap's kind ("stack overflow", "unreachable", ...), with wasmtime's wording after."""
    code = trap.trap_code if isinstance(trap, Trap) else None
    detail = ""
    for line in str(trap).splitlines():
        if line.strip().startswith("wasm trap: "):
            detail = line.strip().removeprefix("wasm trap: ")
            break
    if code is None:
        return detail or summary(trap)
    kind = code.name.lower().replace("_", " ")
    return f"{kind} ({detail})" if detail and detail != kind else kind


def summary(exc: BaseException) -> str:
    """A wasmtime error's message on one line, without its backtrace."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [
        line
        for line in lines
        if line and line != "Caused by:" and not line[:1].isdigit() and "backtrace" not in line
    ]
    return ": ".join(kept)[:500] or type(exc).__name__
