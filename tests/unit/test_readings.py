"""Single-flight + TTL semantics of Readings, with a controllable clock."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from scaler.errors import BrokerUnavailable
from scaler.metrics import Metrics
from scaler.readings import Readings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Broker:
    def __init__(self, value: float = 5.0, delay: float = 0.0) -> None:
        self.calls = 0
        self.value = value
        self.delay = delay
        self.error: Exception | None = None

    async def read(self) -> float:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.value


def make(ttl: float = 1.0, timeout: float = 1.0, **kw: object) -> tuple[Readings, Clock, Metrics]:
    clock = Clock()
    metrics = Metrics(CollectorRegistry())
    return Readings(metrics=metrics, ttl=ttl, timeout=timeout, clock=clock, **kw), clock, metrics  # type: ignore[arg-type]


async def test_ttl_window() -> None:
    readings, clock, _ = make(ttl=1.0)
    broker = Broker()
    assert await readings.read("t", "k", broker.read) == 5.0
    broker.value = 6.0
    clock.now += 0.99
    assert await readings.read("t", "k", broker.read) == 5.0  # still inside the window
    clock.now += 0.02
    assert await readings.read("t", "k", broker.read) == 6.0
    assert broker.calls == 2


async def test_different_keys_do_not_share() -> None:
    readings, _, _ = make()
    a, b = Broker(1.0), Broker(2.0)
    assert await asyncio.gather(
        readings.read("t", "a", a.read), readings.read("t", "b", b.read)
    ) == [1.0, 2.0]
    assert (a.calls, b.calls) == (1, 1)


async def test_errors_are_shared_but_not_cached() -> None:
    readings, _, metrics = make()
    broker = Broker(delay=0.01)
    broker.error = BrokerUnavailable("down")
    results = await asyncio.gather(
        *(readings.read("t", "k", broker.read) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, BrokerUnavailable) for r in results)
    assert broker.calls == 1
    broker.error = None
    assert await readings.read("t", "k", broker.read) == 5.0  # asked again at once
    assert broker.calls == 2
    assert (
        metrics.registry.get_sample_value(
            "keda_queue_scaler_broker_reads_total", {"scaler_type": "t", "outcome": "unavailable"}
        )
        == 1
    )


async def test_a_cancelled_waiter_does_not_cancel_the_shared_read() -> None:
    readings, _, _ = make()
    broker = Broker(delay=0.05)
    first = asyncio.ensure_future(readings.read("t", "k", broker.read))
    second = asyncio.ensure_future(readings.read("t", "k", broker.read))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == 5.0
    assert broker.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_timeout_is_deadline_exceeded_with_the_limit() -> None:
    readings, _, _ = make(timeout=0.05)
    broker = Broker(delay=1.0)
    with pytest.raises(Exception, match=r"no answer within 0\.05s") as err:
        await readings.read("redis", "k", broker.read)
    assert getattr(err.value, "code", None) == "DEADLINE_EXCEEDED"


async def test_ttl_zero_still_coalesces_concurrent_calls() -> None:
    readings, _, _ = make(ttl=0.0)
    broker = Broker(delay=0.02)
    await asyncio.gather(*(readings.read("t", "k", broker.read) for _ in range(10)))
    assert broker.calls == 1
    await readings.read("t", "k", broker.read)
    assert broker.calls == 2


async def test_cache_size_is_bounded() -> None:
    readings, _, _ = make(max_entries=10)
    broker = Broker()
    for i in range(25):
        await readings.read("t", f"k{i}", broker.read)
    assert len(readings._values) <= 10


async def test_fresh_is_the_cached_sample_within_the_ttl_and_counts_nothing() -> None:
    readings, clock, metrics = make(ttl=1.0)
    broker = Broker(7.0)
    assert readings.fresh("k") == (False, None)
    assert await readings.read("t", "k", broker.read) == 7.0
    hits = metrics.hot.cache_hits.get("t", 0)
    clock.now += 0.99
    assert readings.fresh("k") == (True, 7.0)
    assert readings.fresh("other") == (False, None)
    assert metrics.hot.cache_hits.get("t", 0) == hits  # the caller counts its hit
    clock.now = 101.0  # as read(): a sample exactly ttl old is read again
    assert readings.fresh("k") == (False, None)
    assert broker.calls == 1
