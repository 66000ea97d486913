"""The runtimes a host can have: the built-ins and those installed packages register.

A package adds a runtime with an entry point in the ``polyhost.runtimes`` group naming a
:class:`~._plugin.RuntimePlugin` (a subclass or an instance); an embedding app may call
:func:`register_runtime` instead. A node type's ``runtime`` must name one of these.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import threading

from .._errors import ManifestError
from ._plugin import RuntimePlugin

__all__ = ["ENTRY_POINT_GROUP", "find_runtime", "register_runtime", "runtime_plugins"]

ENTRY_POINT_GROUP = "polyhost.runtimes"
# The built-in runtimes, each a subpackage of this one exporting its plug-in as ``PLUGIN``.
_BUILTINS = ("python", "native", "wasm", "grpc")

_lock = threading.RLock()  # re-entered when a built-in builds node types as it loads
_plugins: dict[str, RuntimePlugin] = {}
_loaded_builtins = False
_scanned_path: tuple[str, ...] | None = None


def _as_plugin(found: object, origin: str) -> RuntimePlugin:
    plugin = found() if isinstance(found, type) else found
    if not isinstance(plugin, RuntimePlugin) or not plugin.name:
        raise ManifestError(f"{origin} is not a polyhost runtime plug-in (a named RuntimePlugin)")
    return plugin


def _builtins() -> None:
    global _loaded_builtins  # noqa: PLW0603 (loaded once per process)
    if _loaded_builtins:
        return
    with _lock:
        if not _loaded_builtins:
            for name in _BUILTINS:
                module = importlib.import_module(f"{__package__}.{name}")
                plugin = _as_plugin(module.PLUGIN, f"the {name} runtime")
                _plugins.setdefault(plugin.name, plugin)
            _loaded_builtins = True


def _scan_entry_points(*, force: bool = False) -> None:
    # Scanning the installed packages takes milliseconds: done again only when sys.path
    # changed (or, by find_runtime, for a name not known yet).
    global _scanned_path  # noqa: PLW0603 (one scan per sys.path)
    path = tuple(sys.path)
    if not force and path == _scanned_path:
        return
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _plugins:
            continue
        origin = f"runtime entry point {entry_point.name!r} ({entry_point.value})"
        try:
            loaded = entry_point.load()
        except Exception as exc:  # a broken plug-in is reported, not a crash of the host
            raise ManifestError(f"{origin} failed to load: {exc}") from exc
        plugin = _as_plugin(loaded, origin)
        with _lock:
            _plugins.setdefault(plugin.name, plugin)
    _scanned_path = path  # a broken plug-in is reported again on the next call


def register_runtime(plugin: RuntimePlugin | type[RuntimePlugin]) -> RuntimePlugin:
    """Make a runtime known to every host of this process (replacing one of the same name)."""
    _builtins()
    found = _as_plugin(plugin, repr(plugin))
    with _lock:
        _plugins[found.name] = found
    return found


def runtime_plugins() -> dict[str, RuntimePlugin]:
    """Every runtime known now, by name: the built-ins, the entry points' and the registered.

    Installed packages are looked at again whenever ``sys.path`` changed, so a plug-in put on
    it after the first host was built is found by the next one (and :func:`find_runtime`
    looks again for a name it does not know). Raises ``ManifestError`` naming an entry point
    that cannot be loaded.
    """
    _builtins()
    _scan_entry_points()
    return dict(_plugins)


def find_runtime(name: str) -> RuntimePlugin | None:
    """The runtime called ``name``, or None (installed packages are looked at on a miss)."""
    _builtins()
    found = _plugins.get(name)
    if found is None:
        _scan_entry_points(force=True)
        found = _plugins.get(name)
    return found
