"""Redis time per queueFormat count at 1,000,000 items: print it from INFO commandstats.

For each framework, fills one queue with ITEMS items laid out as the framework lays
them out (docs/frameworks.md; the layouts are checked against the frameworks in
tests/integration/test_frameworks.py), where the scans are bounded at their bound
(10,000 Sidekiq schedule entries, 10,000 Dramatiq delayed messages), then runs the
scaler's count ROUNDS times through the Redis adapter and prints Redis' own
``usec_per_call`` of EVALSHA: the time Redis spends in one count, all states
included. Nothing is asserted.

    .venv/bin/python bench/format_counts.py [--items 1000000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, as a script

from bench.common import redis_server
from scaler.brokers.redis.client import RedisAdapter
from scaler.registry import Triggers

BATCH = 10_000
BOUND = 10_000


def chunks(n: int) -> list[range]:
    return [range(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]


def push(r: redis.Redis, key: str, n: int) -> None:
    for part in chunks(n):
        r.rpush(key, *(f"id-{i}" for i in part))


def zadd(r: redis.Redis, key: str, n: int, score: Callable[[int], float]) -> None:
    for part in chunks(n):
        r.zadd(key, {f"id-{i}": score(i) for i in part})


def fill(r: redis.Redis, framework: str, n: int) -> None:
    now = time.time()
    if framework == "celery":
        for key in ("q", "q\x06\x163", "q\x06\x166", "q\x06\x169"):
            push(r, key, n // 4)
    elif framework == "rq":
        push(r, "rq:queue:q", n // 2)
        zadd(r, "rq:scheduled:q", n // 2, lambda i: now + (-3600 if i % 2 else 3600))
        zadd(r, "rq:wip:q", 1000, lambda i: now + 600)
    elif framework == "arq":
        zadd(r, "q", n, lambda i: (now + (-3600 if i % 2 else 3600)) * 1000)
        for i in range(0, 200, 2):
            r.set(f"arq:in-progress:id-{i}", 1)
    elif framework == "dramatiq":
        push(r, "dramatiq:q", n)
        for part in chunks(BOUND):
            r.hset("dramatiq:q.DQ.msgs", mapping={
                f"m{i}": json.dumps({"queue_name": "q.DQ", "options": {"eta": now * 1000}})
                for i in part})  # fmt: skip
    elif framework == "huey":
        push(r, "huey.redis.q", n)
        zadd(r, "huey.schedule.q", 100_000, lambda i: now + (-3600 if i % 2 else 3600))
    elif framework == "bullmq":
        push(r, "bull:q:wait", n // 2)
        zadd(r, "bull:q:prioritized", n // 4, lambda i: i)
        zadd(
            r, "bull:q:delayed", n // 4, lambda i: int(now * 1000 + (i % 2 * 2 - 1) * 3.6e6) * 4096
        )
    elif framework == "sidekiq":
        push(r, "queue:q", n)
        for part in chunks(BOUND - 1000):  # the bound is for the whole count
            r.zadd("schedule", {json.dumps({"queue": "q" if i % 2 else "other", "jid": i}):
                                now + (-3600 if i % 3 else 3600) for i in part})  # fmt: skip
        r.sadd("processes", "host:1")
        r.hset("host:1", "busy", 0)
        r.hset("host:1:workers", mapping={f"t{i}": json.dumps({"queue": "q"}) for i in range(25)})


STATES = {"celery": "ready", "huey": "ready,scheduled", "bullmq": "ready,scheduled,active,paused"}


async def measure(address: str, r: redis.Redis, framework: str, rounds: int) -> float:
    t = Triggers({"redis": RedisAdapter(timeout=30)})
    include = STATES.get(framework, "ready,scheduled,active")
    metadata = {"scalerType": "redis", "address": address, "queueFormat": framework,
                "queueName": "q", "include": include}  # fmt: skip
    trigger = t.parse(metadata)
    adapter = t.adapter_for(trigger)
    await adapter.read(trigger.query)  # loads the script
    r.config_resetstat()
    for _ in range(rounds):
        await adapter.read(trigger.query)
    await t.aclose()
    stats = r.info("commandstats")["cmdstat_evalsha"]
    return float(stats["usec_per_call"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(f"| format | items | Redis µs per count (EVALSHA usec_per_call, {args.rounds} counts) |")
    print("|---|---:|---:|")
    with redis_server() as r:
        address = "127.0.0.1:{}".format(r.connection_pool.connection_kwargs["port"])
        for framework in ("celery", "rq", "arq", "dramatiq", "huey", "bullmq", "sidekiq"):
            r.flushall()
            fill(r, framework, args.items)
            usec = asyncio.run(measure(address, r, framework, args.rounds))
            print(f"| {framework} | {args.items:,} | {usec:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
