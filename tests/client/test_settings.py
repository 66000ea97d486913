"""What a client is built from: the server's URL, the token, and the public surface."""

from __future__ import annotations

import pytest

import polyhost.client
from polyhost import PolyhostError
from polyhost.client import AsyncClient, Client, ClientSettingError

PUBLIC = [
    "TOKEN_ENV", "AsyncClient", "AsyncEventStream", "Client", "ClientSettingError",
    "ConnectionFailedError", "EventStream", "InvalidResponseError", "ServerError",
    "WaitTimeoutError",
]  # fmt: skip


def test_the_public_surface_is_pinned() -> None:
    assert sorted(polyhost.client.__all__) == sorted(PUBLIC)
    errors = [getattr(polyhost.client, name) for name in PUBLIC if name.endswith("Error")]
    assert all(issubclass(error, PolyhostError) for error in errors)
    assert all(error.code == error.code.lower() for error in errors)


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://127.0.0.1:8700", "http://127.0.0.1:8700/api/v1"),
        ("127.0.0.1:8700", "http://127.0.0.1:8700/api/v1"),
        ("https://polyhost.example/", "https://polyhost.example/api/v1"),
        ("https://polyhost.example/api/v1/", "https://polyhost.example/api/v1"),
        ("http://example/behind/a/proxy", "http://example/behind/a/proxy/api/v1"),
    ],
)
def test_the_api_root_is_found_from_the_servers_url(given: str, base: str) -> None:
    with Client(given) as client:
        assert client.base_url == base


@pytest.mark.parametrize("given", ["ftp://example", "http://", "", "::::"])
def test_a_url_that_is_no_http_server_is_refused(given: str) -> None:
    with pytest.raises(ClientSettingError) as caught:
        Client(given)
    assert caught.value.code == "invalid_server_url"


def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "abc\ndef-secret"
    with pytest.raises(ClientSettingError) as caught:
        Client("http://127.0.0.1:1", token=secret)
    assert "def-secret" not in str(caught.value) and "def-secret" not in repr(caught.value)
    monkeypatch.setenv("POLYHOST_API_TOKEN", "with space-secret")
    with pytest.raises(ClientSettingError) as caught:
        AsyncClient("http://127.0.0.1:1")
    assert "space-secret" not in str(caught.value)


def test_a_clients_repr_names_the_server_and_not_the_token() -> None:
    with Client("http://user:pw@127.0.0.1:1", token="tok-secret-1") as client:
        assert "tok-secret-1" not in repr(client)
        assert "user:pw" not in repr(client)
        assert repr(client) == "Client('http://127.0.0.1:1/api/v1')"


def test_inputs_that_are_not_json_fail_at_the_call_and_are_never_altered() -> None:
    # Port 1 has no server: the error comes before any request.
    with Client("http://127.0.0.1:1") as client:
        with pytest.raises(ValueError, match="JSON"):
            client.run({"version": 1, "nodes": []}, {"ratio": float("nan")})
        with pytest.raises(TypeError, match="JSON"):
            client.start("w", {"when": object()})
