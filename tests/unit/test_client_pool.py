"""ClientPool: one client per identity, shared, closed when idle or broken."""

from __future__ import annotations

import asyncio

import pytest

from scaler.brokers.pool import ClientPool


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_opens_once_per_identity_and_closes_idle_ones() -> None:
    closed: list[str] = []
    opened: list[str] = []
    clock = Clock()

    async def close(client: str) -> None:
        closed.append(client)

    pool: ClientPool[str] = ClientPool(close=close, idle_seconds=10, clock=clock)

    def opener(name: str):  # type: ignore[no-untyped-def]
        async def open_client() -> str:
            opened.append(name)
            await asyncio.sleep(0.01)
            return name

        return open_client

    got = await asyncio.gather(*(pool.get("a", opener("a")) for _ in range(5)))
    assert got == ["a"] * 5
    assert opened == ["a"]  # concurrent first uses open one client
    clock.now = 5
    await pool.get("b", opener("b"))
    clock.now = 12  # "a" idle 12 s, "b" 7 s
    await pool.get("b", opener("b"))
    await asyncio.sleep(0)
    assert closed == ["a"]
    assert len(pool) == 1
    await pool.get("a", opener("a"))  # reopened on demand
    assert opened == ["a", "b", "a"]
    pool.discard("b")  # broke: closed and forgotten
    await asyncio.sleep(0)
    assert closed == ["a", "b"]
    await pool.aclose()
    assert sorted(closed) == ["a", "a", "b"]
    assert len(pool) == 0


async def test_a_budget_closes_the_least_recently_used_idle_client_across_pools() -> None:
    from scaler.brokers.pool import ClientBudget
    from scaler.errors import BrokerThrottled

    closed: list[str] = []
    evictions: list[int] = []
    clock = Clock()

    async def close(client: str) -> None:
        closed.append(client)

    budget = ClientBudget(3, on_evict=lambda: evictions.append(1))
    redis: ClientPool[str] = ClientPool(close=close, clock=clock, budget=budget)
    sqs: ClientPool[str] = ClientPool(close=close, clock=clock, budget=budget)

    def opener(name: str):  # type: ignore[no-untyped-def]
        async def open_client() -> str:
            return name

        return open_client

    for pool, name in ((redis, "r1"), (sqs, "s1"), (redis, "r2")):
        clock.now += 1
        await pool.get(name, opener(name))
    assert budget.open_count() == 3
    clock.now += 1
    await redis.get("r1", opener("r1"))  # r1 used again: s1 is now the oldest
    async with sqs.lease("s2", opener("s2")):  # a fourth: s1 goes
        await asyncio.sleep(0)
        assert closed == ["s1"]
        assert budget.open_count() == 3
        # Every client busy: r2 and r1 leased too, so a fifth is refused, not opened.
        async with redis.lease("r2", opener("r2")), redis.lease("r1", opener("r1")):
            with pytest.raises(BrokerThrottled, match="--max-broker-clients"):
                await sqs.get("s3", opener("s3"))
    assert evictions == [1]
    assert budget.open_count() == 3
