"""``measure: age`` on the real brokers (docs/age.md): items are put with known
times, the broker (or the framework's own job records) says when each became ready,
and the scaler's read must give the oldest of them to the broker's resolution. The
clock the age is taken against is injected, never waited on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.errors import MetadataError, UnsupportedState
from scaler.proto import externalscaler_pb2 as pb
from scaler.registry import Triggers
from scaler.trigger import Aged
from scaler.worker import enqueue
from tests.brokers import RedisProcess
from tests.conftest import ServerFactory, evaluate, ref
from tests.frameworks.peers import Peer
from tests.integration.test_frameworks import CASES, metadata

#: The finest step of any source's timestamps here (RQ and Sidekiq keep microseconds,
#: the rest milliseconds; floats carry them to about a microsecond).
RESOLUTION = 2e-6


@pytest.fixture
async def triggers() -> Iterator[Triggers]:
    t = Triggers({"redis": RedisAdapter(timeout=5)})
    yield t  # type: ignore[misc]
    await t.aclose()


async def read(triggers: Triggers, md: dict[str, str]) -> Aged:
    trigger = triggers.parse(md)
    sample = await triggers.adapter_for(trigger).read(trigger.query)
    assert isinstance(sample, Aged)
    return sample


def aged(md: dict[str, str], **more: str) -> dict[str, str]:
    return {**md, "measure": "age", "targetAge": "60", "activationAge": "30", **more}


# -- lists -------------------------------------------------------------------------
async def test_list_written_by_the_enqueue_helper(
    redis_db: RedisProcess, triggers: Triggers
) -> None:
    md = {"scalerType": "redis", "address": redis_db.address, "listName": "jobs"}
    assert (await read(triggers, aged(md))) == Aged(0.0, None)  # empty: nothing waits
    assert await evaluate(triggers, aged(md), now=2e9) == (0.0, False)
    await enqueue(md, [b"first", b"second", b"third"])
    client = redis_db.client()
    # the envelope's documented "at" (Unix ms) of the item a worker takes first
    first_at = json.loads(client.lindex("jobs", -1))["at"] / 1000
    sample = await read(triggers, aged(md))
    assert sample.length == 3
    assert sample.oldest == pytest.approx(first_at, abs=RESOLUTION)
    # the injected clock, 90 s on: the value is the age, active past activationAge 30
    value, active = await evaluate(triggers, aged(md), now=first_at + 90)
    assert value == pytest.approx(90, abs=RESOLUTION)
    assert active
    value, active = await evaluate(triggers, aged(md), now=first_at + 20)
    assert value == pytest.approx(20, abs=RESOLUTION)
    assert not active


@pytest.mark.parametrize(
    ("stamps", "oldest"),
    [
        ([1_700_000_000, 1_700_000_100], 1_700_000_000.0),  # Unix seconds
        ([1_700_000_000_250, 1_700_000_000_500], 1_700_000_000.25),  # Unix milliseconds
        (["2023-11-14T22:13:20.5+00:00", "2023-11-14T22:15:00Z"], 1_700_000_000.5),  # ISO 8601
    ],
)
async def test_list_of_json_items_with_an_age_field(
    redis_db: RedisProcess, triggers: Triggers, stamps: list[Any], oldest: float
) -> None:
    client = redis_db.client()
    for stamp in stamps:  # LPUSH, a consumer's RPOP takes the oldest first
        client.lpush("jobs", json.dumps({"task": "x", "queued": stamp}))
    md = aged({"scalerType": "redis", "address": redis_db.address, "listName": "jobs"},
              ageField="queued")  # fmt: skip
    assert (await read(triggers, md)) == Aged(2.0, pytest.approx(oldest, abs=1e-6))
    client.delete("jobs")
    for stamp in stamps:  # RPUSH and LPOP: the oldest at the other end, found as well
        client.rpush("jobs", json.dumps({"task": "x", "queued": stamp}))
    assert (await read(triggers, md)).oldest == pytest.approx(oldest, abs=1e-6)


async def test_list_items_without_times_are_refused_never_guessed(
    redis_db: RedisProcess, triggers: Triggers
) -> None:
    client = redis_db.client()
    client.rpush("jobs", "raw item", json.dumps({"queued": 1_700_000_000}))
    md = aged({"scalerType": "redis", "address": redis_db.address, "listName": "jobs"})
    with pytest.raises(UnsupportedState, match=r"carries no enqueue time.*ageField"):
        await read(triggers, md)
    client.zadd("scores", {"a": 1})
    with pytest.raises(UnsupportedState, match="is a zset: measure age reads a list"):
        await read(triggers, {**md, "listName": "scores"})
    with pytest.raises(MetadataError, match='"targetAge" is required'):
        triggers.parse({**md, "targetAge": ""})
    with pytest.raises(MetadataError, match='"ageField" applies to measure "age"'):
        triggers.parse({**md, "measure": "length", "targetAge": "", "activationAge": "",
                        "ageField": "queued"})  # fmt: skip


async def test_a_tenants_hostile_items_are_refused_where_they_lie(
    redis_db: RedisProcess, triggers: Triggers
) -> None:
    """The worst a producer can put at a list's end, or in an RQ job's record: a 2 MiB
    item (not fetched: its size is), a time that is no time, a job id of 100 kB. Each
    is an error that names the key and never echoes the data."""
    client = redis_db.client()
    md = aged({"scalerType": "redis", "address": redis_db.address, "listName": "big"},
              ageField="at")  # fmt: skip
    client.rpush("big", json.dumps({"at": 1_700_000_000, "pad": "x" * (2 << 20)}))
    with pytest.raises(
        UnsupportedState, match=r"is 2,097,1[0-9][0-9] bytes, more than the 1,048,576"
    ):
        await read(triggers, md)
    client.rpush("odd", json.dumps({"at": "yesterday-ish"}), json.dumps({"at": [1]}))
    with pytest.raises(UnsupportedState, match="carries no enqueue time") as refused:
        await read(triggers, {**md, "listName": "odd"})
    assert "yesterday" not in str(refused.value)
    # RQ: a queued id naming a record with a 1 MB "enqueued_at", and a 100 kB job id
    client.rpush("rq:queue:default", "j1")
    client.hset("rq:job:j1", "enqueued_at", "2026-" + "9" * (1 << 20))
    rq = aged({"scalerType": "redis", "address": redis_db.address, "queueFormat": "rq",
               "queueName": "default"})  # fmt: skip
    with pytest.raises(UnsupportedState, match="keeps no enqueue time") as refused:
        await read(triggers, rq)
    assert "9999" not in str(refused.value)
    long_id = "k" * 100_000
    client.delete("rq:queue:default")
    client.rpush("rq:queue:default", long_id)
    client.hset(f"rq:job:{long_id}", "status", "queued")
    with pytest.raises(UnsupportedState, match="keeps no enqueue time") as refused:
        await read(triggers, rq)
    assert len(str(refused.value)) < 1_000


async def test_worked_list_counts_its_states_and_ages_its_ready_items(
    redis_db: RedisProcess, triggers: Triggers
) -> None:
    md = {"scalerType": "redis", "address": redis_db.address, "listName": "jobs"}
    await enqueue(md, [b"a", b"b"])
    first_at = json.loads(redis_db.client().lindex("jobs", -1))["at"] / 1000
    sample = await read(triggers, aged(md, include="ready,active,expired"))
    assert sample.length == 2
    assert sample.oldest == pytest.approx(first_at, abs=RESOLUTION)


# -- streams -----------------------------------------------------------------------
def _ms(entry_id: bytes) -> float:
    return int(entry_id.split(b"-")[0]) / 1000


async def test_stream_ages_from_the_first_entry_the_group_was_not_given(
    redis_db: RedisProcess, triggers: Triggers
) -> None:
    client = redis_db.client()
    base = {"scalerType": "redis-streams", "address": redis_db.address, "stream": "events"}
    assert (await read(triggers, aged(base))) == Aged(0.0, None)  # no stream yet
    # ids the broker stamps (auto) and ids a producer chose (explicit, in the past)
    ids = [client.xadd("events", {"n": "0"}, id="1700000000000-0"),
           client.xadd("events", {"n": "1"}, id="1700000000500-3")]  # fmt: skip
    ids += [client.xadd("events", {"n": str(i)}) for i in range(2, 6)]
    # no group: the first entry
    assert (await read(triggers, aged(base))).oldest == _ms(ids[0])
    grouped = aged({**base, "consumerGroup": "workers"})
    client.xgroup_create("events", "workers", id="0")
    # a group that was given nothing yet: still the first entry; pending mode counts 0
    assert (await read(triggers, grouped)) == Aged(0.0, _ms(ids[0]))
    client.xreadgroup("workers", "w1", {"events": ">"}, count=3)  # 3 delivered (pending)
    client.xack("events", "workers", ids[0])  # one of them acknowledged
    sample = await read(triggers, grouped)
    assert sample == Aged(2.0, _ms(ids[3]))  # 2 pending; the oldest undelivered is the 4th
    lag = await read(triggers, {**grouped, "lagCount": "5"})
    assert lag == Aged(3.0, _ms(ids[3]))  # lag mode: 3 undelivered
    client.xreadgroup("workers", "w1", {"events": ">"})  # every entry delivered
    assert (await read(triggers, grouped)).oldest is None
    assert await evaluate(triggers, grouped, now=_ms(ids[5]) + 1000) == (0.0, False)
    # a group that does not exist yet has been given nothing: the first entry
    other = {**grouped, "consumerGroup": "late", "lagCount": "5"}
    assert (await read(triggers, other)) == Aged(6.0, _ms(ids[0]))


# -- task frameworks ---------------------------------------------------------------
AGED_FRAMEWORKS = ("rq", "arq", "dramatiq", "bullmq", "sidekiq")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("framework", AGED_FRAMEWORKS)
async def test_framework_age_is_the_frameworks_own_oldest_ready_time(
    framework: str, peers: dict[str, Peer], redis_db: RedisProcess, triggers: Triggers
) -> None:
    rng = random.Random(f"age-{framework}-20261202")
    url = f"redis://{redis_db.address}/0"
    seen_empty = seen_due = 0
    worst = 0.0  # the largest |scaler - framework| in seconds, printed for the docs
    for i in range(12):
        peer_name, settings, state = CASES[framework](rng, i)
        if i == 0:
            state = {**state, **dict.fromkeys(("ready", "due", "prioritized"), 0)}
        counts, expected = peers[peer_name].build_aged(
            {"framework": framework, "url": url, "settings": settings, "state": state}
        )
        md = aged(metadata(redis_db, framework, settings))
        sample = await read(triggers, md)
        assert sample.length == counts["ready"], (i, state, counts)
        if expected is None:
            seen_empty += 1
            assert sample.oldest is None, (i, state)
            continue
        seen_due += bool(state.get("due"))
        assert sample.oldest == pytest.approx(expected, abs=RESOLUTION), (i, state)
        worst = max(worst, abs(sample.oldest - expected))
        value, active = await evaluate(triggers, md, now=expected + 45.5)
        assert value == pytest.approx(45.5, abs=1e-3), (i, state)
        assert active, (i, state)
    print(f"\n{framework}: 12 states, oldest ready time off the framework's by at most "
          f"{worst * 1e6:.3f} µs")  # fmt: skip
    assert seen_empty  # an empty queue was read
    assert seen_due  # and due scheduled work


@pytest.mark.parametrize("framework", ["celery", "huey"])
def test_frameworks_without_times_are_refused_with_the_reason(
    framework: str, redis_db: RedisProcess, triggers: Triggers
) -> None:
    md = aged(metadata(redis_db, framework, {"queue": "default"}))
    reason = f"cannot be read here: {framework.capitalize()}.*no enqueue time"
    with pytest.raises(MetadataError, match=reason):
        triggers.parse(md)


async def test_grpc_answers_the_age_and_exports_it_per_scaledjob(
    redis_db: RedisProcess, start_server: ServerFactory
) -> None:
    """Over gRPC, as KEDA asks: the spec's target is targetAge, GetMetrics the age at the
    server's (injected) wall clock, IsActive past activationAge; the gauge names the
    ScaledJob; a source without times is a FAILED_PRECONDITION that says why."""
    client = redis_db.client()
    client.lpush("jobs", json.dumps({"queued": 1_700_000_000.25}))
    client.lpush("raw", "no time here")
    md = aged({"scalerType": "redis", "address": redis_db.address, "listName": "jobs"},
              ageField="queued")  # fmt: skip
    now = [1_700_000_010.25]
    async with start_server(cache_ttl=0.0, wall_clock=lambda: now[0]) as s:
        spec = await s.stub.GetMetricSpec(ref(md, "resize", "team-a"))
        assert [(m.metricName, m.targetSizeFloat) for m in spec.metricSpecs] == [
            ("redis-jobs-age", 60.0)
        ]
        request = pb.GetMetricsRequest(scaledObjectRef=ref(md, "resize", "team-a"))
        got = await s.stub.GetMetrics(request)
        assert got.metricValues[0].metricValueFloat == pytest.approx(10.0, abs=RESOLUTION)
        assert not (await s.stub.IsActive(ref(md, "resize", "team-a"))).result
        now[0] += 30  # the clock moves; the item has now waited 40 s > activationAge 30
        assert (await s.stub.IsActive(ref(md, "resize", "team-a"))).result
        labels = {"scaled_namespace": "team-a", "scaled_name": "resize", "metric": "redis-jobs-age"}
        gauge = s.server.registry.get_sample_value(
            "keda_queue_scaler_oldest_item_age_seconds", labels
        )
        assert gauge == pytest.approx(40.0, abs=RESOLUTION)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await s.stub.GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=ref({**md, "listName": "raw"}))
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "carries no enqueue time" in (refused.value.details() or "")
