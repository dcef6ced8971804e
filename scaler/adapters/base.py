"""The adapter boundary: one small async Protocol and the Trigger it serves.

A :class:`Trigger` is what one ScaledJob trigger's metadata means: KEDA's metric
name, the target and activation threshold, and a ``query`` — a frozen dataclass
owned by the adapter that says what to count and where. Two triggers with equal
queries share one broker read, whatever their targets.

An adapter's read returns a *sample*: a number for most brokers, or a richer
record (RabbitMQ: depth and rates) that the trigger's ``rule`` turns into KEDA's
value and activity, so triggers in different modes still share one read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from scaler.metadata import fingerprint

C = TypeVar("C")

_METRIC_NAME_REPLACED = str.maketrans({c: "-" for c in "/.:%()"})


def metric_name(prefix: str, name: str) -> str:
    """KEDA's metric name: ``<prefix>-<name>`` with ``/ . : % ( )`` replaced by ``-``."""
    return f"{prefix}-{name}".translate(_METRIC_NAME_REPLACED)


@dataclass(frozen=True)
class Trigger:
    scaler_type: str
    metric_name: str
    target: float
    activation: float
    query: Any  # a frozen dataclass of the adapter's; Secrets inside, never clear text
    #: sample -> (value, active); None: the sample is the value, active when greater
    #: than ``activation``.
    rule: Callable[[Any], tuple[float, bool]] | None = field(default=None, compare=False)
    #: Identity of the broker read: equal for triggers that must share one read,
    #: with every credential reduced to a salted digest.
    read_key: Hashable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_key", (self.scaler_type, fingerprint(self.query)))

    def evaluate(self, sample: Any) -> tuple[float, bool]:
        """KEDA's value and activity for a sample. Default rule, as in every built-in
        queue scaler: the value is the count, active when strictly greater than the
        activation threshold."""
        if self.rule is not None:
            return self.rule(sample)
        value = float(sample)
        return value, value > self.activation


@runtime_checkable
class Adapter(Protocol):
    """Reads one sample (usually a number) for a query. Connections are opened lazily and reused.

    ``read`` raises :class:`scaler.errors.ScalerError` subclasses only; it may be
    cancelled (the caller bounds it with the read timeout) and must leave shared
    connections usable for other queries when it is.
    """

    async def read(self, query: Any) -> Any: ...

    async def aclose(self) -> None: ...


class ClientPool(Generic[C]):
    """Broker clients kept per identity: opened on first use, shared, and closed once
    unused for ``idle_seconds`` (an identity whose credentials rotated, or a queue
    nobody polls any more, must not hold connections for the life of the pod).

    ``idle_seconds`` is far above any read timeout, so a client is never closed
    under a read that is using it.
    """

    def __init__(
        self,
        *,
        close: Callable[[C], Coroutine[Any, Any, None]],
        idle_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._close = close
        self._idle = idle_seconds
        self._clock = clock
        self._entries: dict[Hashable, tuple[C, float]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._last_sweep = clock()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, ident: Hashable, open_client: Callable[[], Awaitable[C]]) -> C:
        now = self._clock()
        entry = self._entries.get(ident)
        if entry is None:
            async with self._locks.setdefault(ident, asyncio.Lock()):
                entry = self._entries.get(ident)
                if entry is None:
                    entry = (await open_client(), now)
        self._entries[ident] = (entry[0], now)
        if now - self._last_sweep > min(60.0, self._idle):
            self._sweep(now)
        return entry[0]

    def discard(self, ident: Hashable) -> None:
        """Forget (and close) a client that broke, so the next get opens a fresh one."""
        entry = self._entries.pop(ident, None)
        if entry is not None:
            self._close_later(entry[0])

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for ident, (client, used) in list(self._entries.items()):
            if now - used > self._idle:
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
