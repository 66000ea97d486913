"""The sidecars a host knows: managed ones it runs, remote ones it connects to."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc

from ..._errors import RuntimeUnavailableError
from ..._limits import Limits, default_limits
from ...workflow._catalog import SidecarSpec
from ._sidecar_process import ManagedSidecar, SidecarStartError
from ._wire import Endpoint, wait_serving

__all__ = ["RemoteSidecar", "Sidecar", "SidecarManager"]


class RemoteSidecar:
    """An ``endpoint`` sidecar, deployed on its own; checked for health before first use."""

    def __init__(self, name: str, spec: SidecarSpec) -> None:
        assert spec.endpoint is not None
        self.name = name
        self.spec = spec
        self._lock = threading.Lock()
        self._checked = False
        self._endpoint = Endpoint(
            name=name,
            target=spec.endpoint,
            token=_token(name, spec),
            credentials=_credentials(name, spec),
            server_name=spec.server_name,
            max_message_bytes=spec.max_message_bytes,
        )

    @property
    def pid(self) -> int | None:
        return None

    def ready_endpoint(self) -> Endpoint | None:
        return self._endpoint if self._checked else None

    def ensure(self, failed: Endpoint | None = None) -> Endpoint:
        del failed  # a remote sidecar is not restarted by this host: nothing to wait for
        with self._lock:
            if not self._checked:
                problem = wait_serving(self._endpoint, self.spec.start_timeout)
                if problem is not None:
                    raise SidecarStartError(
                        f"sidecar {self.name} at {self.spec.endpoint} is not serving: {problem}"
                    )
                self._checked = True
            return self._endpoint

    def describe_failure(self) -> str:
        return ""

    def unhealthy(self) -> None:
        """A call could not reach it: check its health again before the next one."""
        self._checked = False

    def close(self) -> None:
        self._checked = False


Sidecar = ManagedSidecar | RemoteSidecar


class SidecarManager:
    """Sidecars by name; a manifest that declares a name again with other settings replaces
    the old one (a managed process is stopped)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or default_limits()
        self._lock = threading.Lock()
        self._sidecars: dict[str, Sidecar] = {}
        self._closed = False

    def get(self, name: str, spec: SidecarSpec) -> Sidecar:
        with self._lock:
            if self._closed:
                raise RuntimeUnavailableError("the grpc runtime is closed")
            found = self._sidecars.get(name)
            if found is not None and found.spec == spec:
                return found
            stale = found
            created: Sidecar = (
                ManagedSidecar(name, spec, self.limits)
                if spec.command is not None
                else RemoteSidecar(name, spec)
            )
            self._sidecars[name] = created
        if stale is not None:
            stale.close()
        return created

    def known(self, name: str) -> Sidecar | None:
        return self._sidecars.get(name)

    def close(self) -> None:
        """Stop every managed sidecar; idempotent."""
        with self._lock:
            self._closed = True
            sidecars, self._sidecars = list(self._sidecars.values()), {}
        threads = [threading.Thread(target=sidecar.close) for sidecar in sidecars]
        for thread in threads:  # in parallel: each may wait out its stop_timeout
            thread.start()
        for thread in threads:
            thread.join()


def _token(name: str, spec: SidecarSpec) -> str | None:
    if spec.token_env is None:
        return None
    value = os.environ.get(spec.token_env)
    if not value:
        raise RuntimeUnavailableError(
            f"sidecar {name}: token_env names {spec.token_env}, which is not set"
        )
    return value


def _credentials(name: str, spec: SidecarSpec) -> grpc.ChannelCredentials | None:
    if not spec.tls:
        return None
    roots = None
    if spec.ca_file is not None:
        base = Path(spec.base_dir) if spec.base_dir else Path.cwd()
        try:
            roots = (base / spec.ca_file).read_bytes()
        except OSError as exc:
            raise RuntimeUnavailableError(
                f"sidecar {name}: cannot read ca_file {spec.ca_file}: {exc.strerror}"
            ) from None
    return grpc.ssl_channel_credentials(root_certificates=roots)
