"""Soak: KEDA's polling pattern for a while, with Redis restarted in the middle.

The restart is an event the test records (when Redis was stopped, when it was back
and refilled); every poll that began outside that outage, widened by the cache TTL and
the read timeout, must have answered the true value. No share of an ideal poll count
is assumed, so a slow machine that polls less often still passes or fails on what
each poll answered.

Marked slow: skipped by `make test`, run by `make test-slow` (pytest --run-slow).
"""

from __future__ import annotations

import asyncio
import collections
import random
import resource

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from tests.brokers import RedisProcess
from tests.conftest import ServerFactory, ref

SECONDS = 40
SCALED_JOBS = 300
QUEUES = 20
INTERVAL = 2.0


@pytest.mark.slow
@pytest.mark.timeout(SECONDS * 3)
async def test_soak_with_a_broker_restart(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    for q in range(QUEUES):
        redis_db.client().rpush(f"q{q}", *range(q + 1))
    outcomes = {"ok": 0, "empty_after_restart": 0, "unavailable": 0, "wrong": 0, "other": 0}
    polls: list[tuple[float, str]] = []  # (when the poll began, its outcome)
    marks = {"stopping": float("inf"), "refilled": float("inf")}
    loop = asyncio.get_running_loop()
    # The restarted Redis is empty until chaos() refills it: a 0 read then is the truth.
    refilled = {"at": loop.time() - 10}  # filled above, long before the first poll
    async with start_server(cache_ttl=1.0, read_timeout=1.0) as s:
        end = loop.time() + SECONDS

        async def scaled_job(i: int) -> None:
            q = i % QUEUES
            metadata = {"scalerType": "redis", "address": redis_db.address, "listName": f"q{q}"}
            await asyncio.sleep(random.uniform(0, INTERVAL))
            while loop.time() < end:
                began = loop.time()
                outcome = "other"
                try:
                    await s.stub.GetMetricSpec(ref(metadata))
                    reply = await s.stub.GetMetrics(
                        pb.GetMetricsRequest(
                            scaledObjectRef=ref(metadata), metricName=f"redis-q{q}"
                        )
                    )
                    await s.stub.IsActive(ref(metadata))
                    value = reply.metricValues[0].metricValue
                    if value == q + 1:
                        outcome = "ok"
                    elif value == 0 and loop.time() < refilled["at"] + 1.0:  # + cache TTL
                        outcome = "empty_after_restart"
                    else:
                        outcome = "wrong"
                except grpc.aio.AioRpcError as exc:
                    unavailable = exc.code() == grpc.StatusCode.UNAVAILABLE
                    outcome = "unavailable" if unavailable else "other"
                outcomes[outcome] += 1
                polls.append((began, outcome))
                await asyncio.sleep(INTERVAL)

        async def chaos() -> None:
            await asyncio.sleep(SECONDS / 3)
            refilled["at"] = float("inf")
            marks["stopping"] = loop.time()
            await asyncio.to_thread(redis_db.stop)
            await asyncio.sleep(3)
            refilled["at"] = float("inf")
            await asyncio.to_thread(redis_db.start)
            for q in range(QUEUES):
                redis_db.client().rpush(f"q{q}", *range(q + 1))
            refilled["at"] = marks["refilled"] = loop.time()

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await asyncio.gather(chaos(), *(scaled_job(i) for i in range(SCALED_JOBS)))
        rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert outcomes["wrong"] == 0, outcomes  # never a made-up value
    assert outcomes["other"] == 0, outcomes
    assert outcomes["unavailable"] > 0, outcomes  # the restart was seen as errors
    # Outside the outage (widened by a poll's three RPCs, each up to the cache TTL plus
    # the read timeout), every poll answered the true value.
    grace = 3 * (1.0 + 1.0)
    before = [o for t, o in polls if t < marks["stopping"] - grace]
    after = [o for t, o in polls if t > marks["refilled"] + grace]
    assert before, "no poll before the restart"
    assert after, "no poll after the restart"
    assert set(before) == {"ok"}, collections.Counter(before)
    assert set(after) == {"ok"}, collections.Counter(after)
    print(f"soak: {len(polls)} polls, {outcomes}; {len(before)} before and {len(after)} "
          "after the outage, all answered")  # fmt: skip
    assert rss_growth_mib < 100, rss_growth_mib
