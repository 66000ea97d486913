"""Node types: their metadata (spec section 4) and the catalog that holds them."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import threading
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import ManifestError
from .._limits import default_limits
from ..events._redaction import allowed_env
from ..runtimes._plugin import RuntimeOptions
from ..runtimes._registry import find_runtime, runtime_plugins
from ._document import Unreadable, read_limited

__all__ = ["Catalog", "HostSection", "ManifestSections", "NodeType", "SidecarSpec"]

ENTRY_POINT_GROUP = "polyhost.nodes"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NodeType(BaseModel):
    """Metadata of a node type; the runtime named here runs every node of this type.

    The keys a runtime adds (``handler``, ``module``, ``sidecar``, ...) are its ``options``,
    checked against that runtime's own model: in a manifest they stay top-level keys of the
    ``[[nodes]]`` entry, and they read as attributes (``node_type.handler``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
    runtime: str = Field(description="the runtime that runs it: a built-in or a plug-in's")
    version: str = "1"
    description: str = ""
    options: RuntimeOptions = Field(
        default_factory=RuntimeOptions, description="the runtime's own keys, as its model"
    )
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    ports: tuple[str, ...] = ("out",)
    port_field: str | None = Field(
        None, description="output field whose value names the port the node settles on"
    )
    ports_param: str | None = Field(
        None, description="a `with` list whose entries are extra ports (core.switch: cases)"
    )
    expression_params: tuple[str, ...] = Field(
        (), description="`with` keys that hold a bare CEL expression rather than a template"
    )
    base_dir: str | None = Field(None, description="folder of the manifest that declared it")
    control: Literal["loop", "parallel"] | None = Field(
        None, description="run by the engine itself: a node with a `body` workflow"
    )
    tools_param: str | None = Field(
        None,
        description="a `with` list of node types the node may run as tools (llm.chat: tools)",
    )
    tool_choice_param: str | None = Field(
        None,
        description="a `with` key naming one of those tools, or auto, none or required "
        "(llm.chat: tool_choice)",
    )

    def summary(self) -> dict[str, Any]:
        """The catalog entry people and programs see: ``polyhost nodes --json``, ``GET /nodes``."""
        return {
            "type": self.type,
            "runtime": self.runtime,
            "version": self.version,
            "description": self.description,
            "ports": list(self.ports),
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    @model_validator(mode="before")
    @classmethod
    def _runtime_options(cls, data: Any) -> Any:
        # The runtime's keys are validated by its model; the rest by this one.
        if not isinstance(data, dict) or not isinstance(data.get("runtime"), str):
            return data
        own = {k: v for k, v in data.items() if k not in cls.model_fields}
        common = {k: v for k, v in data.items() if k in cls.model_fields}
        runtime = data["runtime"]
        plugin = find_runtime(runtime)
        if plugin is None:
            known = ", ".join(sorted(runtime_plugins()))
            raise ValueError(f"unknown runtime {runtime!r} (known: {known})")
        model = plugin.options
        given = common.pop("options", None)
        if isinstance(given, RuntimeOptions):
            if not isinstance(given, model):
                raise ValueError(f"the options are not the {runtime} runtime's")
            if not own:
                common["options"] = given
                return common
            given = dict(given)
        elif given is not None and not isinstance(given, dict):
            raise ValueError("options: expected a table of the runtime's keys")
        values = {**(given if isinstance(given, dict) else {}), **own}
        for key in values:
            if key not in model.model_fields:
                raise ValueError(
                    f"`{key}` is not an option of the {runtime} runtime "
                    f"(its options: {', '.join(model.model_fields) or 'none'})"
                )
        target = plugin.target
        if target is not None and values.get(target) is None and common.get("control") is None:
            raise ValueError(f"a {runtime} node type needs `{target}`")
        try:
            common["options"] = model.model_validate(values)
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None
        return common

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # A runtime's option read as an attribute (node_type.handler), for convenience;
            # runtime code reads its typed options model instead.
            if not name.startswith("_"):
                options = self.__dict__.get("options")
                if options is not None and name in type(options).model_fields:
                    return getattr(options, name)
            return super().__getattr__(name)

    def ports_for(self, params: dict[str, Any]) -> tuple[str, ...]:
        """The ports a node of this type has, given its ``with`` (switch cases add ports)."""
        if self.ports_param is None:
            return self.ports
        extra = params.get(self.ports_param)
        if isinstance(extra, list):
            return (*self.ports, *(str(p) for p in extra))
        return self.ports


class SidecarSpec(BaseModel):
    """A gRPC sidecar declared in a manifest: managed (``command``) or remote (``endpoint``).

    A managed sidecar is started by the host (when its manifest is loaded, to ask it for its
    node types, or on first use with ``discover = false``), listens where the host says (a Unix
    socket in a private folder, or a free loopback port with ``transport = "tcp"``), and is
    restarted with backoff when it dies.
    A remote one is reached at ``endpoint``, over TLS when ``tls`` is set, with the bearer token
    found in the environment variable ``token_env`` (tokens never appear in manifests).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = Field(None, min_length=1)
    endpoint: str | None = Field(None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    env_inherit: tuple[str, ...] = Field(
        (), description="variables of the host's environment passed on (besides PATH, HOME, ...)"
    )
    health_interval: float = Field(
        10.0, gt=0, description="seconds between health checks of a running managed sidecar"
    )
    transport: Literal["unix", "tcp"] = "unix"
    discover: bool = Field(
        True, description="ask it for its node types when the manifest is loaded (starts it)"
    )
    start_timeout: float = Field(15.0, gt=0, description="seconds to become SERVING")
    stop_timeout: float = Field(5.0, ge=0, description="seconds between SIGTERM and SIGKILL")
    tls: bool = False
    ca_file: str | None = Field(None, description="PEM roots for a remote sidecar's certificate")
    server_name: str | None = Field(None, description="the name its certificate must carry")
    token_env: str | None = Field(None, description="environment variable holding the token")
    max_message_bytes: int = Field(64 * 1024 * 1024, gt=0)
    base_dir: str | None = None

    @model_validator(mode="after")
    def _managed_or_remote(self) -> SidecarSpec:
        if (self.command is None) == (self.endpoint is None):
            raise ValueError("a sidecar needs exactly one of `command` (managed) or `endpoint`")
        if self.command is None and (self.env or self.env_inherit or self.transport != "unix"):
            raise ValueError(
                "`env`, `env_inherit` and `transport` apply to managed sidecars (`command`) only"
            )
        return self


class HostSection(BaseModel):
    """A manifest's ``[host]`` table: what the host that loads it allows its workflows.

    Only ``env`` for now: the environment variables workflows may read as ``env.NAME``. Their
    values are secrets, masked in everything a run lets out. Settings that would loosen the
    host's safety (limits, allowed roots) stay with whoever runs the host.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: tuple[str, ...] = Field(
        (),
        description="environment variables workflows may read as env.NAME (values are secrets)",
    )

    @model_validator(mode="after")
    def _names(self) -> HostSection:
        for name in self.env:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"env: {name!r} is not an environment variable name")
        return self


@dataclass(frozen=True, slots=True)
class ManifestSections:
    """What a loaded manifest declares besides its node types (runtimes read their part)."""

    path: Path
    sidecars: Mapping[str, SidecarSpec]


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: list[dict[str, Any]] = Field(default_factory=list)
    sidecars: dict[str, SidecarSpec] = Field(default_factory=dict)
    host: HostSection = Field(default_factory=HostSection)
    # `[defaults."llm.chat"]`: `with` values every node of that type gets unless it sets them.
    defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Catalog:
    """Every node type a host knows, by type name.

    Python handlers are imported lazily and cached; a manifest's folder is put on ``sys.path``
    so that ``handler = "acme_nodes:upper"`` finds ``acme_nodes.py`` beside it.
    """

    def __init__(self, types: Iterable[NodeType] = ()) -> None:
        self._types: dict[str, NodeType] = {}
        self._callables: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self.sidecars: dict[str, SidecarSpec] = {}
        # Called with each manifest loaded (a runtime that discovers node types from what a
        # manifest declares, such as sidecars, watches here).
        self._watchers: list[Callable[[ManifestSections], None]] = []
        self.sidecar_problems: dict[str, str] = {}  # why a sidecar's node types are unknown
        # Environment variables the manifests' `[host] env` allow (the host adds its own).
        self.env_allow: list[str] = []
        # Per node type, `with` values its nodes get unless they set them (host config, then
        # manifests: a later source wins per key).
        self.defaults: dict[str, dict[str, Any]] = {}
        self.version = 0  # bumped on every change, so compiled plans can be cached safely
        for node_type in types:
            self.add(node_type)

    @classmethod
    def with_builtins(cls) -> Catalog:
        """A catalog holding the built-in node types: ``core.*`` and those every runtime
        brings (the native registry's)."""
        from ..nodes import builtin_node_types  # noqa: PLC0415 (nodes import the catalog)

        contributed = [t for plugin in runtime_plugins().values() for t in plugin.node_types()]
        return cls([*builtin_node_types(), *contributed])

    def add_defaults(self, defaults: Mapping[str, Mapping[str, Any]]) -> None:
        """Merge per-type default `with` values (a later call wins per key)."""
        for type_name, values in defaults.items():
            self.defaults.setdefault(type_name, {}).update(values)
        if defaults:
            self.version += 1

    def watch(self, callback: Callable[[ManifestSections], None]) -> None:
        """Call ``callback`` with what each manifest loaded from now on declares."""
        self._watchers.append(callback)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types

    def __iter__(self) -> Iterator[NodeType]:
        return iter(sorted(self._types.values(), key=lambda t: t.type))

    def __len__(self) -> int:
        return len(self._types)

    def get(self, type_name: str) -> NodeType | None:
        """The node type called ``type_name``, or None."""
        return self._types.get(type_name)

    def add(self, node_type: NodeType, handler: Callable[..., Any] | None = None) -> None:
        """Register a node type (replacing one of the same name), optionally with its callable."""
        self._types[node_type.type] = node_type
        self.version += 1
        if handler is not None:
            self._callables[node_type.type] = handler
        else:
            self._callables.pop(node_type.type, None)

    def node(
        self,
        type_name: str,
        *,
        description: str = "",
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        ports: tuple[str, ...] = ("out",),
        port_field: str | None = None,
        isolation: Literal["inline", "process"] = "inline",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a python function as a node type, for embedding apps."""

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            handler = f"{func.__module__}:{func.__qualname__}"
            node_type = NodeType.model_validate(
                {
                    "type": type_name,
                    "runtime": "python",
                    "handler": handler,
                    "description": description or inspect.getdoc(func) or "",
                    "input_schema": input_schema,
                    "output_schema": output_schema,
                    "ports": ports,
                    "port_field": port_field,
                    "isolation": isolation,
                }
            )
            self.add(node_type, func)
            return func

        return register

    def cached_callable(
        self, node_type: NodeType, load: Callable[[], Callable[..., Any]]
    ) -> Callable[..., Any]:
        """The callable behind ``node_type``: the one registered with it, else ``load()``'s,
        imported once (a runtime says how; its errors propagate)."""
        found = self._callables.get(node_type.type)
        if found is not None:
            return found
        with self._lock:
            found = self._callables.get(node_type.type)
            if found is None:
                found = load()
                self._callables[node_type.type] = found
        return found

    def load_manifest(self, path: str | Path) -> None:
        """Add the node types, sidecars and ``[host] env`` names a ``polyhost.toml`` declares."""
        path = Path(path)
        try:
            # Bounded like a workflow document; a NUL in the path is refused, not a ValueError.
            data = read_limited(path, default_limits().max_document_bytes)
            raw = tomllib.loads(data.decode("utf-8"))
        except Unreadable as exc:
            code = "limit_exceeded" if exc.limit is not None else None
            raise ManifestError(f"manifest {exc.message}", code=code) from None
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}: the manifest is not UTF-8 text: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{path}: not valid TOML: {exc}") from exc
        try:
            manifest = _Manifest.model_validate(raw)
        except ValidationError as exc:
            raise ManifestError(f"{path}: {_first_error(exc)}") from exc
        base = str(path.resolve().parent)
        # Secrets are known before any sidecar of this manifest starts (and may log them).
        allowed_env(manifest.host.env)
        self.env_allow.extend(n for n in manifest.host.env if n not in self.env_allow)
        sections = ManifestSections(
            path=path,
            sidecars={
                name: sidecar.model_copy(update={"base_dir": base})
                for name, sidecar in manifest.sidecars.items()
            },
        )
        for index, entry in enumerate(manifest.nodes):
            try:
                node_type = NodeType.model_validate({**entry, "base_dir": base})
            except ValidationError as exc:
                label = entry.get("type", f"nodes[{index}]")
                raise ManifestError(f"{path}: node type {label}: {_first_error(exc)}") from exc
            plugin = find_runtime(node_type.runtime)
            problem = plugin.check_manifest(node_type, sections) if plugin else None
            if problem is not None:
                raise ManifestError(f"{path}: node type {node_type.type}: {problem}")
            self.add(node_type)
        self.sidecars.update(sections.sidecars)
        for type_name in manifest.defaults:
            if type_name not in self._types:  # a typo must not leave the defaults unused
                raise ManifestError(f"{path}: defaults: no node type {type_name!r}")
        self.add_defaults(manifest.defaults)
        for watcher in self._watchers:
            watcher(sections)

    def load_entry_points(self) -> None:
        """Add node types that installed packages register under ``polyhost.nodes``.

        An entry point names a callable returning an iterable of ``NodeType`` (or of
        ``(NodeType, handler)`` pairs).
        """
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                provided = entry_point.load()()
            except Exception as exc:  # a broken plugin must not take the host down
                raise ManifestError(
                    f"entry point {entry_point.name!r} ({entry_point.value}) failed: {exc}"
                ) from exc
            for item in provided:
                if isinstance(item, tuple):
                    self.add(item[0], item[1])
                else:
                    self.add(item)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
