"""A host-wide limit on nodes running at once, cheap when a slot is free."""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio

__all__ = ["NodeSlots"]


class NodeSlots:
    """A counting semaphore with a fast path.

    anyio's CapacityLimiter yields to the event loop on every acquire, even when a slot is free:
    one extra loop iteration per node, a large share of the engine's per-node cost. Here a free
    slot is taken without yielding; waiters queue in FIFO order and are woken one at a time.
    """

    __slots__ = ("_free", "_total", "_waiters")

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("at least one slot is needed")
        self._total = total
        self._free = total
        self._waiters: deque[anyio.Event] = deque()

    @property
    def total(self) -> int:
        """How many nodes may run at once."""
        return self._total

    @property
    def in_use(self) -> int:
        """How many slots are taken."""
        return self._total - self._free

    async def acquire(self) -> None:
        """Take a slot, waiting (cancellably) for one when none is free."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                # Woken and cancelled at once: pass the slot on rather than lose it.
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        """Give a slot back, to the longest waiter if there is one."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
