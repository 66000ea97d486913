"""Live events for the streams: the host's events of every run, fanned out per run.

A stream registers before it reads the store, so an event is either stored by the time the
stream reads, or waiting in its buffer; the stream orders both by ``seq`` and so sends each
event once, with no gap. The buffer is bounded: a client that reads slower than the run emits
makes its stream drop buffered events and read them back from the store instead, so a stalled
client costs the server a fixed amount of memory and never slows a run (delivery to a buffer
never waits).
"""

from __future__ import annotations

from collections import deque

import anyio

from ..events._events import Event

__all__ = ["EventHub", "Subscription"]


class Subscription:
    """One stream's view of one run's live events."""

    __slots__ = ("_wake", "buffer", "capacity", "overflowed", "remote", "run_id")

    def __init__(self, run_id: str, capacity: int) -> None:
        self.run_id = run_id
        self.capacity = capacity
        self.buffer: deque[Event] = deque()
        self.overflowed = False
        # True while the run executes on another host: the store's changes wake the stream.
        self.remote = False
        self._wake = anyio.Event()

    def deliver(self, event: Event) -> None:
        if len(self.buffer) >= self.capacity:
            # The store has every event: drop what is buffered, read it back later.
            self.buffer.clear()
            self.overflowed = True
        else:
            self.buffer.append(event)
        self._wake.set()

    def take(self) -> tuple[list[Event], bool]:
        """The buffered events and whether some were dropped since the last take."""
        events = list(self.buffer)
        self.buffer.clear()
        overflowed, self.overflowed = self.overflowed, False
        if self._wake.is_set():
            self._wake = anyio.Event()
        return events, overflowed

    async def wait(self, timeout: float) -> None:
        """Until an event arrives or ``timeout`` seconds pass."""
        if self.buffer or self.overflowed:
            return
        with anyio.move_on_after(timeout):
            await self._wake.wait()


class EventHub:
    """Routes a host's events to the subscriptions of their run (on the event loop)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._by_run: dict[str, list[Subscription]] = {}

    def __call__(self, event: Event) -> None:
        """The host's event listener: never blocks, never raises for a subscriber."""
        subscriptions = self._by_run.get(event.run_id)
        if subscriptions:
            for subscription in subscriptions:
                subscription.deliver(event)

    def subscribe(self, run_id: str) -> Subscription:
        subscription = Subscription(run_id, self._capacity)
        self._by_run.setdefault(run_id, []).append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._by_run.get(subscription.run_id)
        if subscriptions is None:
            return
        remaining = [s for s in subscriptions if s is not subscription]
        if remaining:
            self._by_run[subscription.run_id] = remaining
        else:
            del self._by_run[subscription.run_id]

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._by_run.values())

    @property
    def watching_remote(self) -> bool:
        """Whether a stream waits for a run that executes on another host."""
        return any(s.remote for subs in self._by_run.values() for s in subs)

    def wake_remote(self) -> None:
        """The store changed: wake the streams of runs executing elsewhere to read it."""
        for subscriptions in self._by_run.values():
            for subscription in subscriptions:
                if subscription.remote:
                    subscription._wake.set()

    def wake_all(self) -> None:
        """Wake every stream (the server is stopping)."""
        for subscriptions in self._by_run.values():
            for subscription in subscriptions:
                subscription._wake.set()
