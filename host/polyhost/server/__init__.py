"""The HTTP server: the API of docs/http-api.md, its event stream, deployed workflows and
triggers, on FastAPI and uvicorn. ``polyhost serve`` runs it; an app may mount
:func:`create_app` in its own ASGI server."""

from ._app import create_app
from ._main import bind, serve
from ._settings import ServerConfigError, ServerSettings, is_loopback, read_tokens

__all__ = [
    "ServerConfigError",
    "ServerSettings",
    "bind",
    "create_app",
    "is_loopback",
    "read_tokens",
    "serve",
]
