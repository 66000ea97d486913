"""Following a run's event stream across dropped connections, against a loopback stand-in
that cuts connections, refuses them or replays too much (tests/helpers/sse_api.py)."""

from __future__ import annotations

import pytest

from polyhost.client import AsyncClient, Client, ConnectionFailedError, ServerError
from tests.helpers.sse_api import RUN_ID, Script, fake_api, run_events

TOKEN = "s3cr3t-token-value"


def seqs(client: Client, after: int = 0) -> list[int]:
    with client.stream(RUN_ID, after=after) as events:
        return [event.seq for event in events]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_cut_connections_resume_after_the_last_event_and_yield_each_once(chunked: bool) -> None:
    # Cut after 3 events, then after 4, then whole: 3 connections for 10 events.
    script = Script(run_events(10), cut_after=[3, 4, None], chunked=chunked)
    with fake_api(script) as api, Client(api.url, token=TOKEN) as client:
        assert seqs(client) == list(range(1, 11))
    assert [a.last_event_id for a in api.attempts] == [None, "3", "7"]
    assert [a.after for a in api.attempts] == ["0", "3", "7"]
    assert all(a.authorization == f"Bearer {TOKEN}" for a in api.attempts)


def test_a_replay_of_events_already_yielded_is_skipped() -> None:
    script = Script(run_events(8), cut_after=[5, None], overlap=3)
    with fake_api(script) as api, Client(api.url) as client:
        assert seqs(client) == list(range(1, 9))
    assert len(api.attempts) == 2


def test_the_stream_ends_after_the_event_that_ends_the_run() -> None:
    # Each connection delivers everything: the run's end is the stream's end.
    for end in ("run.failed", "run.cancelled"):
        with (
            fake_api(Script(run_events(4, end=end))) as api,
            Client(api.url) as client,
            client.stream(RUN_ID) as events,
        ):
            got = list(events)
        assert [e.type for e in got][-1] == end
        assert len(api.attempts) == 1


def test_a_stream_after_the_last_event_of_an_ended_run_ends_empty() -> None:
    # Nothing after seq 6, and the server closes: the run's status says it is over.
    with fake_api(Script(run_events(6))) as api, Client(api.url) as client:
        assert seqs(client, after=6) == []
    assert len(api.attempts) == 1
    assert api.status_reads == 1


def test_unavailable_answers_are_retried_then_streamed() -> None:
    script = Script(run_events(5), refuse=[503, 503, None])
    with fake_api(script) as api, Client(api.url) as client:
        assert seqs(client) == [1, 2, 3, 4, 5]
    assert len(api.attempts) == 3


def test_a_stream_that_keeps_failing_gives_up_naming_the_server_not_the_token() -> None:
    script = Script(run_events(5), refuse=[503])
    with (
        fake_api(script) as api,
        Client(api.url, token=TOKEN, stream_retries=2) as client,
        pytest.raises(ConnectionFailedError) as caught,
    ):
        seqs(client)
    assert len(api.attempts) == 3  # the first and two retries
    message = str(caught.value)
    assert api.url in message and "503" in message and RUN_ID in message
    assert TOKEN not in message and TOKEN not in repr(caught.value)


def test_a_run_that_does_not_exist_is_a_server_error_at_once() -> None:
    with (
        fake_api(Script(run_events(3))) as api,
        Client(api.url) as client,
        pytest.raises(ServerError) as caught,
        client.stream("no-such-run") as events,
    ):
        list(events)
    assert caught.value.status == 404
    assert caught.value.code == "run_not_found"
    assert api.attempts == []  # not retried


def test_closing_the_stream_early_stops_following() -> None:
    with fake_api(Script(run_events(10))) as api, Client(api.url) as client:
        with client.stream(RUN_ID) as events:
            first = next(events)
        assert first.seq == 1
        with pytest.raises(StopIteration):
            next(events)


@pytest.mark.anyio
async def test_the_async_stream_resumes_the_same_way() -> None:
    script = Script(run_events(10), cut_after=[2, 5, None])
    with fake_api(script) as api:
        async with AsyncClient(api.url, token=TOKEN) as client, client.stream(RUN_ID) as events:
            got = [event.seq async for event in events]
    assert got == list(range(1, 11))
    assert [a.last_event_id for a in api.attempts] == [None, "2", "7"]


@pytest.mark.anyio
async def test_the_async_stream_gives_up_after_its_retries() -> None:
    with fake_api(Script(run_events(3), refuse=[502])) as api:
        async with AsyncClient(api.url, stream_retries=1) as client:
            with pytest.raises(ConnectionFailedError, match="502"):
                async with client.stream(RUN_ID) as events:
                    _ = [event async for event in events]
    assert len(api.attempts) == 2
