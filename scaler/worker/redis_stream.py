"""Redis streams: a consumer group, XACK, and XAUTOCLAIM for the entries of workers
that stopped.

Each worker is its own consumer of the trigger's ``consumerGroup`` (created at ``0``
with MKSTREAM when missing, so entries already in the stream are worked). A claim
first takes an entry idle for longer than the lease (XAUTOCLAIM: a dead worker's,
or one put back), else a new one (XREADGROUP ``>``). The attempt is the group's own
delivery count. The heartbeat re-claims the entry for its owner (which resets its
idle time), in a script that first checks the owner. A retry or a release sets the
entry's idle time past any lease, so the next claim takes it at once; a release
also restores the delivery count. A dead letter copies the entry to
``<stream>:dead`` (with ``kqs-stream-id``) and acknowledges it, in one script.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from typing import Any, cast

from redis import exceptions as rexc
from redis.asyncio import Redis

from scaler.brokers.redis.client import open_client, translate
from scaler.brokers.redis.metadata import RedisConnection
from scaler.errors import QueueNotFound, ScalerError
from scaler.worker.source import Claim

#: Idle time given to an entry put back, so any lease has ended for it (ms).
_PUT_BACK_IDLE = 10**12

# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id. 1 when still ours.
_RENEW = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""
# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] id, ARGV[4] the delivery
# count to leave ('' keeps it). Puts an entry of ours back for the next claim.
_PUT_BACK = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
if ARGV[4] ~= '' then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5],
             'RETRYCOUNT', ARGV[4], 'JUSTID')
else
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'JUSTID')
end
return 1
"""
# KEYS[1] stream, KEYS[2] dead-letter stream; ARGV[1] group, ARGV[2] id.
_DEAD = """
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e == 1 then
  local fields = e[1][2]
  table.insert(fields, 'kqs-stream-id')
  table.insert(fields, ARGV[2])
  redis.call('XADD', KEYS[2], '*', unpack(fields))
end
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
"""

#: The longest one XREADGROUP blocks: an entry put back waits at most this long.
BLOCK_SECONDS = 1.0


def payload_of(fields: dict[bytes, bytes]) -> bytes:
    """What CMD receives: the ``payload`` field (the enqueue helper writes it), else
    every field as one JSON object."""
    if b"payload" in fields:
        return fields[b"payload"]
    return json.dumps(
        {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()},
        ensure_ascii=False,
    ).encode()


class RedisStreamSource:
    def __init__(
        self,
        conn: RedisConnection,
        stream: str,
        group: str,
        *,
        lease: float,
        timeout: float = 10.0,
        dead_letter: str = "",
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._group = group
        self._dead = dead_letter or f"{stream}:dead"
        self._lease_ms = max(1, round(lease * 1000))
        self._consumer = f"kqs-{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self._ready = False
        self.where = f'stream "{stream}" group "{group}" on {conn.describe()}'
        client, self._closers = open_client(
            conn, timeout=timeout + BLOCK_SECONDS, max_connections=4,
            name="keda-queue-scaler-work",
        )  # fmt: skip
        self._client: Any = client
        self._scripts = {
            name: cast(Redis, client).register_script(source)
            for name, source in (("renew", _RENEW), ("put_back", _PUT_BACK), ("dead", _DEAD))
        }

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except ScalerError:
            raise
        except rexc.ResponseError as exc:
            if str(exc).startswith("NOGROUP"):
                raise QueueNotFound(
                    f'consumer group "{self._group}" does not exist on stream "{self._stream}" '
                    f"({self._conn.describe()})"
                ) from exc
            raise translate(exc, self._conn, what) from exc
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise translate(exc, self._conn, what) from exc

    async def _ensure_group(self) -> None:
        if self._ready:
            return
        try:
            await self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except rexc.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise translate(exc, self._conn, "creating the consumer group") from exc
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise translate(exc, self._conn, "creating the consumer group") from exc
        self._ready = True

    async def check(self) -> None:
        await self._ensure_group()

    def _claim(self, entry_id: bytes, fields: dict[bytes, bytes], attempt: int) -> Claim:
        ident = entry_id.decode()
        millis = ident.split("-", 1)[0]
        return Claim(ident, payload_of(fields), attempt, int(millis) / 1000, ident)

    async def claim(self, wait: float) -> Claim | None:
        await self._ensure_group()
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            found = await self._reclaim()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            block_ms = round(min(BLOCK_SECONDS, remaining) * 1000)
            answer = await self._call(
                "reading the group", self._client.xreadgroup, self._group, self._consumer,
                {self._stream: ">"}, count=1, block=block_ms if block_ms > 0 else None,
            )  # fmt: skip
            for _stream, entries in answer or []:
                for entry_id, fields in entries:
                    if fields:
                        return self._claim(entry_id, fields, 1)
            if time.monotonic() >= deadline:
                return None

    async def _reclaim(self) -> Claim | None:
        start: Any = "0-0"
        for _ in range(100):  # XAUTOCLAIM scans up to 10 x COUNT pending entries a call
            answer = await self._call(
                "claiming an idle entry", self._client.xautoclaim, self._stream, self._group,
                self._consumer, self._lease_ms, start_id=start, count=1,
            )  # fmt: skip
            start, entries = answer[0], answer[1]
            for entry_id, fields in entries:
                if not fields:
                    continue
                pending = await self._call(
                    "reading the delivery count", self._client.xpending_range, self._stream,
                    self._group, min=entry_id, max=entry_id, count=1, consumername=self._consumer,
                )  # fmt: skip
                attempt = int(pending[0]["times_delivered"]) if pending else 1
                return self._claim(entry_id, fields, attempt)
            if start in (b"0-0", "0-0"):
                return None
        return None

    async def renew(self, claim: Claim) -> bool:
        args = [self._group, self._consumer, str(claim.handle)]
        answer = await self._call(
            "renewing", self._scripts["renew"], keys=[self._stream], args=args
        )
        return bool(answer)

    async def ack(self, claim: Claim) -> None:
        await self._call("acknowledging", self._client.xack, self._stream, self._group,
                         str(claim.handle))  # fmt: skip

    async def _put_back(self, claim: Claim, count: str, what: str) -> None:
        args = [self._group, self._consumer, str(claim.handle), count, _PUT_BACK_IDLE]
        await self._call(what, self._scripts["put_back"], keys=[self._stream], args=args)

    async def retry(self, claim: Claim) -> None:
        await self._put_back(claim, "", "returning an entry")

    async def release(self, claim: Claim) -> None:
        await self._put_back(claim, str(max(0, claim.attempt - 1)), "releasing")

    async def dead_letter(self, claim: Claim) -> None:
        await self._call("dead-lettering", self._scripts["dead"], keys=[self._stream, self._dead],
                         args=[self._group, str(claim.handle)])  # fmt: skip

    async def sweep(self) -> int:
        """Remove this group's consumers that hold nothing and were idle past the lease
        (each worker is one consumer; killed ones would pile up). Entries are returned
        by the next claim's XAUTOCLAIM, so none is counted here."""
        await self._ensure_group()
        consumers = await self._call("listing consumers", self._client.xinfo_consumers,
                                     self._stream, self._group)  # fmt: skip
        for each in consumers[:1000]:
            name = each.get("name")
            name = name.decode() if isinstance(name, bytes) else str(name)
            if name != self._consumer and each.get("pending") == 0 and \
                    int(each.get("idle", 0)) > self._lease_ms:  # fmt: skip
                await self._call("removing an idle consumer", self._client.xgroup_delconsumer,
                                 self._stream, self._group, name)  # fmt: skip
        return 0

    async def put(self, payload: bytes) -> str:
        entry_id = await self._call(f'adding to "{self._stream}"', self._client.xadd,
                                    self._stream, {"payload": payload})  # fmt: skip
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def aclose(self) -> None:
        try:
            if self._ready:
                mine = await self._client.xpending_range(
                    self._stream, self._group, min="-", max="+", count=1,
                    consumername=self._consumer,
                )  # fmt: skip
                if not mine:
                    await self._client.xgroup_delconsumer(self._stream, self._group, self._consumer)
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError):
            pass  # an idle consumer left behind is removed by a later sweep
        for each in (self._client, *self._closers):
            with contextlib.suppress(rexc.RedisError, OSError):
                await each.aclose()
