"""An in-memory queue store, for logic tests and the demo without a broker."""

from __future__ import annotations

import asyncio
from collections import Counter

from scaler.brokers.memory.metadata import MemoryQuery
from scaler.errors import QueueNotFound, ScalerError


class MemoryAdapter:
    """In-process queues. ``strict`` makes unknown queues NOT_FOUND instead of 0."""

    def __init__(self, *, strict: bool = False) -> None:
        self._depth: Counter[str] = Counter()
        self._known: set[str] = set()
        self._delay: dict[str, float] = {}
        self._failure: dict[str, ScalerError] = {}
        self.reads: Counter[str] = Counter()
        self._started: dict[str, asyncio.Event] = {}
        self._strict = strict

    # -- the store ------------------------------------------------------
    def put(self, queue: str, count: int = 1) -> None:
        self._known.add(queue)
        self._depth[queue] += count

    def take(self, queue: str) -> bool:
        """Remove one item; False when the queue is empty."""
        if self._depth[queue] <= 0:
            return False
        self._depth[queue] -= 1
        return True

    def depth(self, queue: str) -> int:
        return self._depth[queue]

    def set_delay(self, queue: str, seconds: float) -> None:
        self._delay[queue] = seconds

    def set_failure(self, queue: str, error: ScalerError | None) -> None:
        if error is None:
            self._failure.pop(queue, None)
        else:
            self._failure[queue] = error

    # -- Adapter ----------------------------------------------------------
    async def reading(self, queue: str) -> None:
        """Wait until a read of ``queue`` has started (for tests: an event, not a sleep)."""
        await self._started.setdefault(queue, asyncio.Event()).wait()

    async def read(self, query: MemoryQuery) -> float:
        self.reads[query.queue] += 1
        self._started.setdefault(query.queue, asyncio.Event()).set()
        if delay := self._delay.get(query.queue):
            await asyncio.sleep(delay)
        if (failure := self._failure.get(query.queue)) is not None:
            raise failure
        if self._strict and query.queue not in self._known:
            raise QueueNotFound(f'memory queue "{query.queue}" does not exist')
        return float(self._depth[query.queue])

    async def aclose(self) -> None:
        return None
