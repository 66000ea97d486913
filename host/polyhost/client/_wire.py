"""What the sync and the async client share, without I/O: a request to make (:class:`Call`),
how its answer is read, how an error answer becomes a :class:`ServerError`, the base URL and
the headers.

Each endpoint is one :class:`Call` (built in ``_calls.py``); the two clients only send it and
hand its answer to ``call.decode``, so both read every answer the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ValidationError

from ..api import API_PREFIX, Problem
from ..events._result import RunResult
from ._errors import ClientSettingError, InvalidResponseError, ServerError

__all__ = [
    "DEFAULT_STREAM_IDLE_TIMEOUT",
    "DEFAULT_STREAM_RETRIES",
    "DEFAULT_TIMEOUT",
    "JSON",
    "POLL_FIRST",
    "POLL_MAX",
    "TOKEN_ENV",
    "Call",
    "api_base",
    "as_model",
    "as_models",
    "as_none",
    "as_result",
    "auth_headers",
    "checked",
    "json_body",
    "read_json",
    "result_from",
    "segment",
    "server_error",
    "transport_reason",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

TOKEN_ENV = "POLYHOST_API_TOKEN"  # noqa: S105 (the name of the variable, not a token)
JSON = "application/json"
DEFAULT_TIMEOUT = 30.0
# The server sends a heartbeat every 15 s: this long without a byte means the connection is
# dead even when no error says so.
DEFAULT_STREAM_IDLE_TIMEOUT = 60.0
DEFAULT_STREAM_RETRIES = 8  # with the backoff: about 16 s without a server (a restart)
# `wait` polls the run: soon at first (short runs), then once a second.
POLL_FIRST = 0.05
POLL_MAX = 1.0


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to the API (``path`` is relative to ``/api/v1/``) and how to read its
    answer. ``hold`` is how long the server may keep the request open on purpose (a run
    started with ``wait``): the read timeout grows by that much."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: Mapping[str, str | int] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hold: float = 0.0


def api_base(url: str) -> str:
    """The API's root URL from a server's URL: ``localhost:8700``, ``http://h:8700/``, or one
    that already ends with ``/api/v1`` all give ``http://.../api/v1``."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientSettingError(
            "the server URL must be http://HOST[:PORT] or https://HOST[:PORT]",
            code="invalid_server_url",
        )
    path = parts.path.rstrip("/").removesuffix(API_PREFIX)
    return urlunsplit((parts.scheme, parts.netloc, path + API_PREFIX, "", ""))


def auth_headers(token: str | None) -> dict[str, str]:
    """The headers every request carries: the bearer token, given or from
    ``$POLYHOST_API_TOKEN``. A token with characters a header cannot carry is refused here,
    before an HTTP library could name it in an error."""
    headers = {"User-Agent": "polyhost-client", "Accept": JSON}
    value = (token if token is not None else os.environ.get(TOKEN_ENV, "")).strip()
    if not value:
        return headers
    if not all("\x21" <= char <= "\x7e" for char in value):
        raise ClientSettingError(
            "the API token holds spaces or characters other than printable ASCII",
            code="invalid_token",
        )
    headers["Authorization"] = f"Bearer {value}"
    return headers


def segment(value: str) -> str:
    """One path segment (a run or workflow id, a hook name), escaped."""
    return quote(value, safe="")


def json_body(value: Any) -> bytes:
    """``value`` as the bytes of a JSON request body (NaN and Infinity are not JSON)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def transport_reason(exc: httpx.TransportError) -> str:
    """What went wrong with the connection, in words (never a request header)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def checked(response: httpx.Response) -> httpx.Response:
    """The response when it is a success; else its problem as a :class:`ServerError`."""
    if response.is_success:
        return response
    raise server_error(response)


def server_error(response: httpx.Response) -> ServerError:
    """The error an unsuccessful answer stands for: its problem object when it has one,
    else the status alone (a proxy's page, say)."""
    status = response.status_code
    try:
        problem: Problem | None = Problem.model_validate_json(response.content)
    except ValidationError:
        problem = None
    if problem is None:
        reason = response.reason_phrase or "error"
        return ServerError(status, "http_error", f"the server answered {status} {reason}")
    return ServerError(
        status,
        problem.code,
        problem.detail,
        title=problem.title,
        type_=problem.type,
        diagnostics=problem.diagnostics,
        node=problem.node,
        field=problem.field,
    )


def read_json(response: httpx.Response) -> Any:
    """The JSON of a successful answer."""
    try:
        return checked(response).json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise InvalidResponseError(f"{_where(response)}: the answer is not JSON ({kind})") from None


def as_model(model: type[M]) -> Callable[[httpx.Response], M]:
    """Reads an answer as one ``model``."""

    def decode(response: httpx.Response) -> M:
        return _validated(model, read_json(response), response)

    return decode


def as_models(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    """Reads an answer that is a JSON array of ``model``."""

    def decode(response: httpx.Response) -> list[M]:
        data = read_json(response)
        if not isinstance(data, list):
            raise InvalidResponseError(f"{_where(response)}: expected a list")
        return [_validated(model, item, response) for item in data]

    return decode


def as_none(response: httpx.Response) -> None:
    """Reads an answer that has no body worth keeping (204)."""
    checked(response)


def as_result(response: httpx.Response) -> RunResult:
    """Reads a run's result: the object ``polyhost run --json`` prints."""
    return result_from(read_json(response), response)


def result_from(data: Any, response: httpx.Response) -> RunResult:
    """A :class:`RunResult` from its JSON object."""
    try:
        return RunResult.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidResponseError(
            f"{_where(response)}: not a run result ({type(exc).__name__}: {exc})"
        ) from None


def _validated(model: type[M], data: Any, response: httpx.Response) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise InvalidResponseError(
            f"{_where(response)}: not a {model.__name__} ({where}: {first['msg']})"
        ) from None


def _where(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path}"
