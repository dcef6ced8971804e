"""Redis lists: BLMOVE into a claim list of one item, plus a lease sorted set.

The layout is :mod:`scaler.brokers.redis.worklist`'s (the scaler counts the same
keys). A claim first writes its lease, then moves the item with BLMOVE (BRPOPLPUSH
where the server predates BLMOVE, Redis < 6.2: the same move), so no instant exists
when a worker holds an item without a lease: a worker killed at any point leaves
either nothing or an item whose lease will end. Every other step is one Lua script,
atomic on the server, timed by the server's clock. Expired claims go back to the
queue at the next sweep: when any worker starts, and every lease/2 while one runs.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Sequence
from typing import Any, cast

from redis import exceptions as rexc
from redis.asyncio import Redis

from scaler.brokers.redis import worklist
from scaler.brokers.redis.client import open_client, translate
from scaler.brokers.redis.metadata import RedisConnection
from scaler.errors import ScalerError, UnsupportedState
from scaler.worker import envelope
from scaler.worker.source import Claim

# KEYS[1] leases; ARGV[1] claim id, ARGV[2] lease ms. Before the move: the lease exists first.
_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
# KEYS[1] leases, KEYS[2] the claim list, KEYS[3] attempts; ARGV[1] claim id, ARGV[2]
# lease ms, ARGV[3] the item's identity. The attempt number, or 0 when the claim is gone.
_CLAIMED = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
"""
# KEYS[1] leases, KEYS[2] the claim list; ARGV[1] claim id, ARGV[2] lease ms.
_RENEW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
# KEYS[1] leases, KEYS[2] the claim list, KEYS[3] attempts, KEYS[4] where the item goes
# ('' to drop it: an acknowledgement); ARGV[1] claim id, ARGV[2] identity, ARGV[3] what
# happens to the attempts count: 'forget', 'keep' or 'uncount' (a release); ARGV[4]
# which end: 'head' (taken next: a release) or 'tail' (behind the waiting items).
# 1 when the claim still held the item, else 0.
_SETTLE = """
local item = redis.call('RPOP', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if not item then return 0 end
if KEYS[4] ~= '' then redis.call(ARGV[4] == 'head' and 'RPUSH' or 'LPUSH', KEYS[4], item) end
if ARGV[3] == 'forget' then
  redis.call('HDEL', KEYS[3], ARGV[2])
elseif ARGV[3] == 'uncount' then
  if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[3], ARGV[2]) end
end
return 1
"""
# KEYS[1] leases, KEYS[2] the queue; ARGV[1] the claim key prefix, ARGV[2] the most to
# return. Items of ended leases go back to the queue's taking end; the number returned.
_SWEEP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local n = 0
for _, id in ipairs(ids) do
  local item = redis.call('RPOP', ARGV[1] .. id)
  if item then
    redis.call('RPUSH', KEYS[2], item)
    n = n + 1
  end
  redis.call('ZREM', KEYS[1], id)
end
return n
"""

#: The longest one BLMOVE blocks; a longer wait is several, with a sweep between.
BLOCK_SECONDS = 2.0


class RedisListSource:
    """One Redis list worked by ``keda-queue-scaler work``."""

    def __init__(
        self,
        conn: RedisConnection,
        queue: str,
        *,
        lease: float,
        timeout: float = 10.0,
        dead_letter: str = "",
        use_blmove: bool = True,
    ) -> None:
        self._conn = conn
        self._keys = worklist.WorkKeys(queue)
        self._dead = dead_letter or self._keys.dead
        self._lease_ms = max(1, round(lease * 1000))
        self._timeout = timeout
        self._use_blmove = use_blmove
        self.where = f'list "{queue}" on {conn.describe()}'
        client, self._closers = open_client(
            conn, timeout=timeout + BLOCK_SECONDS, max_connections=4, name="keda-queue-scaler-work"
        )
        self._client: Any = client  # redis-py's asyncio annotations are the sync mixins'
        self._scripts = {
            name: cast(Redis, client).register_script(source)
            for name, source in (("lease", _LEASE), ("claimed", _CLAIMED), ("renew", _RENEW),
                                 ("settle", _SETTLE), ("sweep", _SWEEP))
        }  # fmt: skip

    async def _run(self, name: str, keys: list[str], args: Sequence[str | int], what: str) -> Any:
        try:
            return await self._scripts[name](keys=keys, args=args)
        except ScalerError:
            raise
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise translate(exc, self._conn, what) from exc

    async def check(self) -> None:
        try:
            kind = await self._client.type(self._keys.queue)
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise translate(exc, self._conn, "checking the list") from exc
        if kind not in (b"list", b"none"):
            raise UnsupportedState(
                f'"{self._keys.queue}" on {self._conn.describe()} is a '
                f"{kind.decode(errors='replace')}, not a list: the worker takes items from a list"
            )

    async def claim(self, wait: float) -> Claim | None:
        deadline = time.monotonic() + max(0.0, wait)
        first = True
        while True:
            if not first:
                await self.sweep()  # a claim that ended while we waited comes back now
            first = False
            block = min(BLOCK_SECONDS, max(0.0, deadline - time.monotonic()))
            claim_id = secrets.token_hex(12)
            claim_key = self._keys.claim(claim_id)
            # The lease covers the blocking move too: a worker killed inside BLMOVE
            # leaves a lease that ends and is swept (with nothing to return).
            lease_ms = self._lease_ms + round(block * 1000)
            await self._run("lease", [self._keys.leases], [claim_id, lease_ms], "leasing")
            raw = await self._move(claim_key, block)
            if raw is None:
                unused = Claim("", b"", 0, handle=claim_id)
                await self._settle(unused, "", "keep", "tail", "dropping an unused lease")
                if time.monotonic() >= deadline:
                    return None
                continue
            item = envelope.unwrap(raw)
            attempt = await self._run(
                "claimed", [self._keys.leases, claim_key, self._keys.attempts],
                [claim_id, self._lease_ms, item.item_id], "recording a claim",
            )  # fmt: skip
            if not attempt:
                continue  # our lease ended before we recorded it: the item went back
            return Claim(item.item_id, item.payload, int(attempt), item.enqueued_at, claim_id)

    async def _move(self, claim_key: str, block: float) -> bytes | None:
        # redis-py takes whole seconds for BRPOPLPUSH and float seconds for BLMOVE;
        # 0 blocks forever, so a zero wait is a non-blocking move.
        what = f'taking an item from "{self._keys.queue}"'
        try:
            if block <= 0:
                raw = await self._client.rpoplpush(self._keys.queue, claim_key)
            elif self._use_blmove:
                try:
                    raw = await self._client.blmove(
                        self._keys.queue, claim_key, block, "RIGHT", "LEFT"
                    )
                except rexc.ResponseError as exc:
                    if "unknown command" not in str(exc).lower():
                        raise
                    self._use_blmove = False  # Redis < 6.2: the same move, older name
                    return await self._move(claim_key, block)
            else:
                raw = await self._client.brpoplpush(
                    self._keys.queue, claim_key, max(1, round(block))
                )
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            if isinstance(exc, rexc.ResponseError) and str(exc).startswith("WRONGTYPE"):
                raise UnsupportedState(
                    f'"{self._keys.queue}" on {self._conn.describe()} is not a list: the '
                    "worker takes items from a Redis list"
                ) from exc
            raise translate(exc, self._conn, what) from exc
        return raw if isinstance(raw, bytes) else None

    async def _settle(self, claim: Claim, to: str, attempts: str, end: str, what: str) -> None:
        claim_id = str(claim.handle)
        keys = [self._keys.leases, self._keys.claim(claim_id), self._keys.attempts, to]
        await self._run("settle", keys, [claim_id, claim.item_id, attempts, end], what)

    async def renew(self, claim: Claim) -> bool:
        keys = [self._keys.leases, self._keys.claim(str(claim.handle))]
        return bool(await self._run("renew", keys, [str(claim.handle), self._lease_ms], "renewing"))

    async def ack(self, claim: Claim) -> None:
        await self._settle(claim, "", "forget", "tail", "acknowledging")

    async def retry(self, claim: Claim) -> None:
        # behind the items waiting, so a failing item does not hold up the others
        await self._settle(claim, self._keys.queue, "keep", "tail", "returning an item")

    async def release(self, claim: Claim) -> None:
        await self._settle(claim, self._keys.queue, "uncount", "head", "releasing")

    async def dead_letter(self, claim: Claim) -> None:
        await self._settle(claim, self._dead, "forget", "tail", "dead-lettering")

    async def sweep(self) -> int:
        returned = await self._run(
            "sweep", [self._keys.leases, self._keys.queue],
            [self._keys.claim_prefix, 1000], "returning expired claims",
        )  # fmt: skip
        return int(returned)

    async def put(self, payload: bytes) -> str:
        item_id = envelope.new_id()
        raw = envelope.wrap(payload, item_id=item_id, at_ms=round(time.time() * 1000))
        try:
            await self._client.lpush(self._keys.queue, raw)
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise translate(exc, self._conn, f'adding to "{self._keys.queue}"') from exc
        return item_id

    async def aclose(self) -> None:
        for each in (self._client, *self._closers):
            with contextlib.suppress(rexc.RedisError, OSError):
                await each.aclose()
