"""The errors of the HTTP client, under polyhost's root error::

    PolyhostError
    ├── ServerError              the server answered with an error (problem+json): status, code
    ├── ConnectionFailedError    the server could not be reached, or the connection broke
    ├── InvalidResponseError     an answer that is not what the API says (not JSON, wrong shape)
    ├── ClientSettingError       a base URL or token the client cannot use
    └── WaitTimeoutError         ``wait`` gave up before the run ended or paused

None of them ever holds the token: messages name the server's URL (without any user
information it carries) and what the server said, never a request header.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .._errors import PolyhostError
from ..api import DiagnosticModel

__all__ = [
    "ClientSettingError",
    "ConnectionFailedError",
    "InvalidResponseError",
    "ServerError",
    "WaitTimeoutError",
    "shown_url",
]


class ServerError(PolyhostError):
    """The server answered with an error.

    ``code`` is the stable snake_case code the server sent (the same codes as the CLI and the
    events: ``run_not_found``, ``invalid_run_state``, ``invalid_inputs``, ...), ``status`` the
    HTTP status, ``detail`` the server's explanation and ``diagnostics`` the compiler's
    findings for an invalid workflow or inputs (empty otherwise).
    """

    code = "server_error"

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str = "",
        type_: str = "about:blank",
        diagnostics: list[DiagnosticModel] | None = None,
        node: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{detail} (HTTP {status})", code=code)
        self.status = status
        self.detail = detail
        self.title = title
        self.type = type_
        self.diagnostics = list(diagnostics or [])
        self.node = node
        self.field = field

    def __repr__(self) -> str:
        return f"ServerError(status={self.status}, code={self.code!r}, detail={self.detail!r})"


class ConnectionFailedError(PolyhostError):
    """The server at ``url`` could not be reached, did not answer in time, or the connection
    broke (for an event stream: more times in a row than the client retries)."""

    code = "connection_failed"

    def __init__(self, url: str, reason: str) -> None:
        self.url = shown_url(url)
        self.reason = reason
        super().__init__(f"cannot reach the polyhost server at {self.url}: {reason}")

    def __repr__(self) -> str:
        return f"ConnectionFailedError(url={self.url!r}, reason={self.reason!r})"


class InvalidResponseError(PolyhostError):
    """The server's answer is not what the API promises: not JSON, or not the documented
    shape. Usually a proxy answering in the server's place, or a server of another API."""

    code = "invalid_response"


class ClientSettingError(PolyhostError):
    """A base URL or an API token the client cannot use (the token itself is never shown)."""

    code = "invalid_client_setting"


class WaitTimeoutError(PolyhostError):
    """A run did not end or pause within the time ``wait`` was given; ``status`` is the one
    it had last."""

    code = "wait_timeout"

    def __init__(self, run_id: str, timeout: float, status: str) -> None:
        super().__init__(f"run {run_id} is still {status} after {timeout:g}s")
        self.run_id = run_id
        self.timeout = timeout
        self.status = status


def shown_url(url: str) -> str:
    """``url`` without user information (``user:secret@``), query or fragment: fit for a
    message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
