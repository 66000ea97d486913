"""The one rule for error codes and fields that come from users' code.

A node can name its own error ``code``: ``core.fail``, a python handler's ``NodeError``, a
sidecar's ``Error`` event, a wasm guest's ``{"error": {"code": ...}}``. Any such code is taken as
given when it is a non-empty printable string of at most :data:`MAX_CODE_CHARS` characters
(``E_FIRE``, ``quota.exceeded``, ``débit-refusé`` all pass); control characters, bidi overrides
and other non-printable characters never do. polyhost's own codes are snake_case
(:func:`is_own_code`), which the rule also admits. A code that breaks the rule is replaced by the
runtime's generic code, and the original is shown, cut and escaped, in the message. An error's
``field`` follows the same rule with :data:`MAX_FIELD_CHARS`; one that breaks it is dropped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .events._redaction import known

if TYPE_CHECKING:
    from ._errors import NodeError

__all__ = [
    "MAX_CODE_CHARS",
    "MAX_FIELD_CHARS",
    "NO_CONTROL_CHARS",
    "check_node_error",
    "code_problem",
    "field_problem",
    "is_own_code",
    "shown",
    "user_code",
    "user_field",
]

MAX_CODE_CHARS = 128
MAX_FIELD_CHARS = 256
_SHOWN_CHARS = 64
# For JSON Schemas of codes: no C0 or C1 control characters (the run-time check does the rest).
NO_CONTROL_CHARS = r"^[^\u0000-\u001f\u007f-\u009f]*$"
_OWN = re.compile(r"[a-z][a-z0-9_]*")


def is_own_code(code: str) -> bool:
    """True for a code of polyhost's own shape: snake_case ASCII."""
    return _OWN.fullmatch(code) is not None


def code_problem(code: object, *, limit: int = MAX_CODE_CHARS) -> str | None:
    """Why ``code`` cannot be a user-given error code, or None when it can."""
    if not isinstance(code, str):
        return f"it is a {type(code).__name__}, not a string"
    if not code:
        return "it is empty"
    if len(code) > limit:
        return f"it is {len(code)} characters long, over {limit}"
    if not code.isprintable():
        return "it holds control or other non-printable characters"
    return None


def field_problem(field: object) -> str | None:
    """Why ``field`` cannot be an error's field, or None when it can."""
    return code_problem(field, limit=MAX_FIELD_CHARS)


def shown(value: object, limit: int = _SHOWN_CHARS) -> str:
    """``value`` quoted for a message: non-printable characters escaped, cut after ``limit``.

    Known secrets are masked before the cut: a cut through a secret would let its head out."""
    text = known().text(value if isinstance(value, str) else repr(value))
    head = "".join(c if c.isprintable() else _escape(c) for c in text[:limit])
    more = f"... ({len(text)} characters)" if len(text) > limit else ""
    return f"'{head}'{more}"


def _escape(char: str) -> str:
    point = ord(char)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def user_code(code: object, generic: str) -> tuple[str, str]:
    """The code to record for a user-given ``code`` and a note for the message ("" when the
    code stands as given); ``generic`` is the runtime's own code for a failure."""
    problem = code_problem(code)
    if problem is None:
        assert isinstance(code, str)
        return code, ""
    return generic, f" (the error code {shown(code)} was replaced by {generic}: {problem})"


def user_field(field: object) -> tuple[str | None, str]:
    """The field to record for a user-given ``field`` (None for none) and a note."""
    if field is None or field == "":
        return None, ""
    problem = field_problem(field)
    if problem is None:
        assert isinstance(field, str)
        return field, ""
    return None, f" (the error field {shown(field)} was dropped: {problem})"


def check_node_error(error: NodeError, generic: str) -> NodeError:
    """``error`` (raised by users' code) with its code and field made to follow the rule, in
    place, so its type and traceback stay; returns it."""
    code, code_note = user_code(error.code, generic)
    field, field_note = user_field(error.field)
    if code_note or field_note:
        error.code = code
        error.field = field
        error.message = f"{error.message}{code_note}{field_note}"
        error.args = (error.message,)
    return error
