"""Broker clients kept per identity and bounded across brokers: :class:`ClientPool`
(one per adapter) and the :class:`ClientBudget` every pool shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Iterator
from typing import Generic, Protocol, TypeVar

from scaler.errors import BrokerThrottled

C = TypeVar("C")


class _Evictable(Protocol):
    """What a budget asks of a pool, whatever its clients are."""

    def size(self) -> int: ...
    def idle_entries(self) -> list[tuple[Hashable, float]]: ...
    def discard(self, ident: Hashable) -> None: ...


class ClientBudget:
    """At most ``limit`` broker clients open across every pool that shares it.

    Opening one more first closes the least recently used client that no read is
    using; when every client is busy, the read is refused (RESOURCE_EXHAUSTED) rather
    than the limit exceeded. ``on_evict`` is called once per client closed to make
    room (a metric)."""

    def __init__(self, limit: int, on_evict: Callable[[], None] | None = None) -> None:
        if limit < 1:
            raise ValueError("the client limit must be at least 1")
        self.limit = limit
        self.on_evict = on_evict
        self._pools: list[_Evictable] = []

    def register(self, pool: _Evictable) -> None:
        self._pools.append(pool)

    def open_count(self) -> int:
        """Clients open or being opened, in every pool."""
        return sum(pool.size() for pool in self._pools)

    def make_room(self) -> None:
        while self.open_count() >= self.limit:
            idle = [
                (used, pool, ident) for pool in self._pools for ident, used in pool.idle_entries()
            ]
            if not idle:
                raise BrokerThrottled(
                    f"the scaler already holds its limit of {self.limit} broker clients "
                    "(--max-broker-clients), every one busy with a read; retried next poll"
                )
            _, pool, ident = min(idle, key=lambda entry: entry[0])
            pool.discard(ident)
            if self.on_evict is not None:
                self.on_evict()


class ClientPool(Generic[C]):
    """Broker clients kept per identity: opened on first use, shared, and closed once
    unused for ``idle_seconds`` (an identity whose credentials rotated, or a queue
    nobody polls any more, must not hold connections for the life of the pod), or
    when a shared :class:`ClientBudget` needs room for another.

    ``idle_seconds`` is far above any read timeout, and a budget only closes clients
    no :meth:`lease` holds, so a client is never closed under a read that is using it.
    """

    def __init__(
        self,
        *,
        close: Callable[[C], Coroutine[object, object, None]],
        idle_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        budget: ClientBudget | None = None,
    ) -> None:
        self._close = close
        self._idle = idle_seconds
        self._clock = clock
        self._budget = budget
        self._entries: dict[Hashable, tuple[C, float]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._in_use: dict[Hashable, int] = {}
        self._opening = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._last_sweep = clock()
        if budget is not None:
            budget.register(self)

    def __len__(self) -> int:
        return len(self._entries)

    def size(self) -> int:
        return len(self._entries) + self._opening

    def idle_entries(self) -> list[tuple[Hashable, float]]:
        """(identity, last used) of the clients no lease holds."""
        return [(i, used) for i, (_, used) in self._entries.items() if not self._in_use.get(i)]

    async def get(self, ident: Hashable, open_client: Callable[[], Awaitable[C]]) -> C:
        now = self._clock()
        entry = self._entries.get(ident)
        if entry is None:
            async with self._locks.setdefault(ident, asyncio.Lock()):
                entry = self._entries.get(ident)
                if entry is None:
                    if self._budget is not None:
                        self._budget.make_room()
                    self._opening += 1
                    try:
                        entry = (await open_client(), now)
                    finally:
                        self._opening -= 1
        self._entries[ident] = (entry[0], now)
        if now - self._last_sweep > min(60.0, self._idle):
            self._sweep(now)
        return entry[0]

    @contextlib.asynccontextmanager
    async def lease(
        self, ident: Hashable, open_client: Callable[[], Awaitable[C]]
    ) -> AsyncIterator[C]:
        """The client for ``ident``, kept open (never evicted) until the block ends."""
        with self.holding(ident):
            yield await self.get(ident, open_client)

    @contextlib.contextmanager
    def holding(self, ident: Hashable) -> Iterator[None]:
        """Mark ``ident``'s client busy (a budget will not evict it) for the block, for
        adapters that get, discard and reopen it within one read."""
        self._in_use[ident] = self._in_use.get(ident, 0) + 1
        try:
            yield
        finally:
            left = self._in_use[ident] - 1
            if left:
                self._in_use[ident] = left
            else:
                del self._in_use[ident]

    def discard(self, ident: Hashable) -> None:
        """Forget (and close) a client that broke, so the next get opens a fresh one."""
        entry = self._entries.pop(ident, None)
        if entry is not None:
            self._close_later(entry[0])

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for ident, (client, used) in list(self._entries.items()):
            if now - used > self._idle and not self._in_use.get(ident):
                del self._entries[ident]
                self._locks.pop(ident, None)
                self._close_later(client)

    def _close_later(self, client: C) -> None:
        task = asyncio.get_running_loop().create_task(self._close(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        for client, _ in entries:
            self._close_later(client)
        await asyncio.gather(*self._closing, return_exceptions=True)
