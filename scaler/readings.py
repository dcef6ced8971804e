"""One broker read per query per window: single-flight plus a short TTL cache.

``Readings.read(kind, key, fetch)``:
1. a value read less than ``ttl`` seconds ago for an equal query is returned at
   once (a cache hit);
2. else, if a read for that query is in flight, the caller waits for it
   (coalesced) — cancelling one waiter never cancels the shared read;
3. else this caller starts the read, bounded by ``timeout``.

Errors are shared by the callers of that one read but never cached: the next
call after a failure asks the broker again, so recovery is immediate. Keys are
:attr:`Trigger.read_key <scaler.brokers.base.Trigger.read_key>`, in which
credentials appear only as salted digests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar, cast

from scaler.errors import BrokerTimeout, ScalerError
from scaler.metrics import Metrics

S = TypeVar("S")


class Readings:
    def __init__(
        self,
        *,
        metrics: Metrics,
        ttl: float,
        timeout: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._ttl = ttl
        self._timeout = timeout
        self._max_entries = max_entries
        self._clock = clock
        # key -> (read at, sample). A key names one query, so one adapter, so the
        # sample's type: read() hands back what that adapter returned.
        self._values: dict[Hashable, tuple[float, object]] = {}
        self._inflight: dict[Hashable, asyncio.Future[object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def fresh(self, key: Hashable) -> tuple[bool, object]:
        """(True, sample) when ``key`` was read less than ``ttl`` seconds ago, else
        (False, None). Counts nothing: a caller that answers from it calls
        ``Metrics.cache_hit`` itself, as :meth:`read` would have."""
        cached = self._values.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return True, cached[1]
        return False, None

    async def read(self, kind: str, key: Hashable, fetch: Callable[[], Awaitable[S]]) -> S:
        """The sample for ``key``; ``kind`` (the scalerType) labels the metrics."""
        cached = self._values.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            self._metrics.cache_hit(kind)
            return cast(S, cached[1])
        future = self._inflight.get(key)
        if future is not None:
            self._metrics.coalesced_wait(kind)
        else:
            future = asyncio.get_running_loop().create_future()
            self._inflight[key] = future
            task = asyncio.create_task(self._run(kind, key, fetch, future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return cast(S, await asyncio.shield(future))

    async def _run(
        self,
        kind: str,
        key: Hashable,
        fetch: Callable[[], Awaitable[S]],
        future: asyncio.Future[object],
    ) -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(self._timeout):
                value = await fetch()
        except TimeoutError:
            outcome = "deadline_exceeded"
            future.set_exception(
                BrokerTimeout(f"{kind} read gave no answer within {self._timeout:g}s")
            )
        except ScalerError as exc:
            outcome = exc.outcome
            future.set_exception(exc)
        except asyncio.CancelledError:
            outcome = "cancelled"
            future.cancel()
            raise
        except Exception as exc:  # an adapter bug: still answer every waiter
            outcome = "internal"
            future.set_exception(exc)
        else:
            self._store(key, value)
            future.set_result(value)
        finally:
            self._inflight.pop(key, None)
            self._metrics.observe_read(kind, outcome, time.perf_counter() - started)
        # Nobody may be left waiting: mark the exception retrieved.
        if future.done() and not future.cancelled():
            future.exception()

    def _store(self, key: Hashable, value: object) -> None:
        now = self._clock()
        if len(self._values) >= self._max_entries:
            self._values = {k: v for k, v in self._values.items() if now - v[0] < self._ttl}
            if len(self._values) >= self._max_entries:
                self._values.clear()
        self._values[key] = (now, value)

    async def aclose(self) -> None:
        """Cancel reads still in flight (used at shutdown, after RPCs drained)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
