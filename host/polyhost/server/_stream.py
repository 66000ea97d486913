"""``GET /runs/{id}/stream``: a run's events as server-sent events, replayed then live.

The stream reads the store after the client's last sequence number, then takes live events from
the hub while this host executes the run, or reads the store while another host does: when the
store's change mark moves (the server looks at it every ``watch_seconds``), and at the latest
every ``poll_seconds``, backing off to half a second while nothing happens. Each event goes out
once, in ``seq`` order: a live event is sent only when it is the next one, and a gap (events
emitted before the stream subscribed but not yet committed) or a dropped buffer sends the stream
back to the store. The stream ends after the event that ends the run (paused runs keep it open).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.to_thread

from ..events._events import Event, EventType
from ..host._host import Host
from ._hub import EventHub, Subscription

__all__ = ["HEARTBEAT", "SHUTDOWN", "encode_event", "event_stream"]

HEARTBEAT = b": keep-alive\n\n"
SHUTDOWN = b": server shutting down; reconnect with Last-Event-ID\n\n"
_PAGE = 1000
_MAX_POLL = 0.5
_ENDINGS = frozenset({EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED})


def encode_event(event: Event) -> bytes:
    """One SSE message: ``id:`` the sequence number, ``event:`` the type, ``data:`` the event."""
    data = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.type.value}\ndata: {data}\n\n".encode()


async def event_stream(
    host: Host,
    hub: EventHub,
    run_id: str,
    after: int,
    *,
    heartbeat: float,
    poll: float,
    closing: Callable[[], bool],
) -> AsyncIterator[bytes]:
    """The SSE body for ``run_id`` from ``after`` on; see the module docstring."""
    stream = _RunStream(host, run_id, after, poll)
    subscription = hub.subscribe(run_id)
    sent_at = time.monotonic()
    try:
        if host.store is not None and run_id in host.active_runs:
            # What the run emitted before the subscription is committed before the first read.
            await host.store.flush()
        while True:
            if stream.from_store:
                async for message in stream.replay():
                    yield message
                    sent_at = time.monotonic()
                if stream.ended or stream.from_store:
                    if stream.ended:
                        return
                    continue
            for message in await stream.live(subscription):
                yield message
                sent_at = time.monotonic()
            if stream.ended:
                return
            if stream.from_store:
                continue
            local = run_id in host.active_runs
            subscription.remote = not local
            if not closing():
                await subscription.wait(heartbeat if local else stream.interval)
            if closing():
                yield SHUTDOWN
                return
            if not local and not subscription.buffer:
                stream.poll_again()  # woken by a change of the store, or the poll is due
            if time.monotonic() - sent_at >= heartbeat:
                yield HEARTBEAT
                sent_at = time.monotonic()
    finally:
        hub.unsubscribe(subscription)


class _RunStream:
    """Where one stream is: the last sequence number sent, and whether to read the store."""

    def __init__(self, host: Host, run_id: str, after: int, poll: float) -> None:
        self.host = host
        self.run_id = run_id
        self.last = after
        self.poll = poll
        self.interval = poll
        self.from_store = True
        self.ended = False
        self.final_seen = False

    async def replay(self) -> AsyncIterator[bytes]:
        """Stored events after the last one sent (one page; ``from_store`` stays set while
        there are more)."""
        history, run_id, after = self.host.history, self.run_id, self.last
        page = await anyio.to_thread.run_sync(
            lambda: history.events(run_id, after_seq=after, limit=_PAGE)
        )
        self.from_store = page.more
        if page.events:
            self.interval = self.poll
        elif run_id not in self.host.active_runs:
            if self.final_seen:
                # Read after the run was seen ended, and still nothing: nothing more will come.
                self.ended = True
                return
            # Nothing after `after`: a run that has ended may have nothing more to send. Its
            # last events may have been committed between the read above and this one, so
            # the store is read once more before the stream ends.
            result = await anyio.to_thread.run_sync(history.result, run_id)
            if result.status.is_final:
                self.final_seen = True
                self.from_store = True
        for event in page.events:
            yield encode_event(event)
            self.last = event.seq
            if event.type in _ENDINGS:
                self.ended = True
                return

    async def live(self, subscription: Subscription) -> list[bytes]:
        """The buffered events that come next, in order; a gap or a dropped buffer sends the
        stream back to the store."""
        events, overflowed = subscription.take()
        if overflowed:
            self.from_store = True
            return []
        messages = []
        for event in events:
            if event.seq <= self.last:
                continue  # already read from the store
            if event.seq != self.last + 1:
                # Emitted before the subscription and not stored yet: store it, read it back.
                if self.host.store is not None:
                    await self.host.store.flush()
                self.from_store = True
                break
            messages.append(encode_event(event))
            self.last = event.seq
            if event.type in _ENDINGS:
                self.ended = True
                break
        return messages

    def poll_again(self) -> None:
        """Read the store next (the run executes elsewhere), a little later each idle time."""
        self.from_store = True
        self.interval = min(self.interval * 2, _MAX_POLL)
