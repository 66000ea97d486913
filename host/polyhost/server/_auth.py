"""Bearer tokens: every ``/api/v1`` request but ``/health`` (and webhooks, which a signature
may authenticate instead) needs one of the configured tokens when any is configured."""

from __future__ import annotations

import hmac
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from ..api import API_PREFIX
from ._problems import ApiError, problem_response

__all__ = ["BearerAuth", "token_ok"]

_OPEN: Final = (f"{API_PREFIX}/health", f"{API_PREFIX}/hooks/")


def token_ok(header: str | None, tokens: tuple[str, ...]) -> bool:
    """Whether an ``Authorization`` header carries one of ``tokens`` (constant time per token)."""
    if not tokens:
        return True
    if header is None:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    supplied = given.strip().encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(supplied, token.encode())
    return matched


class BearerAuth:
    """ASGI middleware answering 401 to an API request without a valid token."""

    def __init__(self, app: ASGIApp, tokens: tuple[str, ...]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(API_PREFIX) or path.startswith(_OPEN):
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        if token_ok(header, self.tokens):
            await self.app(scope, receive, send)
            return
        error = ApiError(401, "a valid bearer token is required", code="unauthorized")
        headers = {"www-authenticate": 'Bearer realm="polyhost"'}
        await problem_response(error, headers)(scope, receive, send)
