"""The web console: the built single-page app (``console/``, built into ``console_dist/`` inside
this package) served at ``/``.

Hashed assets (``/assets/NAME-HASH.js``) never change under their name, so browsers keep them for
a year without asking again; ``index.html`` names the current hashes, so it is revalidated on
every load (``no-cache`` with an ETag, a 304 when unchanged). A path that looks like a page of
the app (no file extension) gets ``index.html``, whose router shows it; an unknown file or any
``/api`` path is a 404, so a typo in an API call never answers HTML. Files are sent gzipped when
the build wrote a ``.gz`` beside them and the client accepts it.
"""

from __future__ import annotations

import mimetypes
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from ..api import API_PREFIX

__all__ = ["CONSOLE_DIST", "install_console"]

CONSOLE_DIST: Final = Path(__file__).parent / "console_dist"

_IMMUTABLE: Final = "public, max-age=31536000, immutable"
_REVALIDATE: Final = "no-cache"
# The app loads nothing from elsewhere (the machine may be air-gapped) and runs no inline script;
# xyflow positions nodes with inline style attributes, hence 'unsafe-inline' for styles only.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_PAGE_HEADERS: Final = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
_NOT_BUILT: Final = (
    "The web console is not built in this installation of polyhost.\n"
    "In a source checkout, `make console` builds it (Node.js and npm needed); the API answers "
    f"at {API_PREFIX} and its OpenAPI document is /openapi.json.\n"
)


def install_console(app: FastAPI, dist: Path = CONSOLE_DIST) -> None:
    """Serve the console built in ``dist`` at ``/``; add after every API route."""
    app.router.routes.append(_ConsoleRoute(_ConsoleFiles(dist)))


class _ConsoleRoute(Route):
    """A catch-all route for GET and HEAD that never matches the API's paths, so an unknown or
    wrongly-called ``/api`` path keeps the API's own 404 and 405 problems."""

    def __init__(self, files: _ConsoleFiles) -> None:
        super().__init__("/{path:path}", files.respond, methods=["GET", "HEAD"])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


@dataclass(frozen=True)
class _Found:
    """One file to send: its bytes as stored (gzipped or not) and how to describe them."""

    body: bytes
    media_type: str
    etag: str
    gzipped: bool


class _ConsoleFiles:
    """Reads the built files, caching each by its size and modification time."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self._cache: dict[tuple[str, bool], tuple[tuple[int, int], _Found]] = {}

    async def respond(self, request: Request) -> Response:
        index = self.dist / "index.html"
        if not index.is_file():
            return PlainTextResponse(_NOT_BUILT, status_code=404)
        relative = _clean(request.path_params.get("path", ""))
        if relative is None:
            return PlainTextResponse("not found\n", status_code=404)
        target = self.dist / relative if relative else index
        if not target.is_file():
            if "." in posixpath.basename(relative):
                # A missing file (an old asset, a typo) is a 404, never the app's HTML.
                return PlainTextResponse("not found\n", status_code=404)
            target = index
        gzip_ok = "gzip" in request.headers.get("accept-encoding", "").lower()
        found = self._read(target, gzip_ok)
        is_page = target == index
        headers = {
            "cache-control": _IMMUTABLE if _is_hashed(relative, is_page) else _REVALIDATE,
            "etag": found.etag,
            "vary": "Accept-Encoding",
            **(_PAGE_HEADERS if is_page else {"x-content-type-options": "nosniff"}),
        }
        if found.gzipped:
            headers["content-encoding"] = "gzip"
        if _matches(request.headers.get("if-none-match"), found.etag):
            return Response(status_code=304, headers=headers)
        body = b"" if request.method == "HEAD" else found.body
        response = Response(body, media_type=found.media_type, headers=headers)
        if request.method == "HEAD":
            response.headers["content-length"] = str(len(found.body))
        return response

    def _read(self, path: Path, gzip_ok: bool) -> _Found:
        packed = path.with_name(path.name + ".gz")
        source = packed if gzip_ok and packed.is_file() else path
        stat = source.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        key = (str(path), source is packed)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        suffix = "-gz" if source is packed else ""
        found = _Found(
            body=source.read_bytes(),
            media_type=_media_type(path),
            etag=f'"{stat.st_size:x}-{stat.st_mtime_ns:x}{suffix}"',
            gzipped=source is packed,
        )
        self._cache[key] = (stamp, found)
        return found


def _clean(path: str) -> str | None:
    """The request path relative to the build folder; None when it would leave the folder."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(part == ".." or "\\" in part or part.startswith(".") for part in parts):
        return None
    return "/".join(parts)


def _is_hashed(relative: str, is_page: bool) -> bool:
    # Vite names everything under assets/ by its content hash; the rest keeps its name.
    return not is_page and relative.startswith("assets/")


def _media_type(path: Path) -> str:
    return (
        _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in (
        tag.strip().removeprefix("W/") for tag in header.split(",")
    )
