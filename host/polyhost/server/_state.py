"""What every request handler of one server shares: the host, its settings, the live hub and
the launcher of background runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request

from .._errors import RunStateError
from ..events._result import RunResult
from ..host._host import Host
from ._auth import token_ok
from ._hub import EventHub
from ._launcher import Launcher
from ._settings import ServerSettings

__all__ = ["ServerState", "state_of"]


@dataclass(slots=True)
class ServerState:
    host: Host
    settings: ServerSettings
    hub: EventHub
    launcher: Launcher | None = None
    closing: bool = False

    def require_launcher(self) -> Launcher:
        if self.launcher is None:  # pragma: no cover (set before the first request)
            raise RunStateError("the server is not started: it starts runs once its lifespan began")
        return self.launcher

    def authorized(self, request: Request) -> bool:
        """Whether the request carries one of the server's tokens (always, without tokens)."""
        return token_ok(request.headers.get("authorization"), self.settings.tokens)

    async def read(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """A blocking history read, in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))

    async def result(self, run_id: str) -> RunResult:
        history = self.host.history
        return await anyio.to_thread.run_sync(history.result, run_id)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.polyhost
    return state
