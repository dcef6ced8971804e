"""ClientPool: one client per identity, shared, closed when idle or broken."""

from __future__ import annotations

import asyncio

from scaler.adapters.base import ClientPool


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
