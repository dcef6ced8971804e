"""queueFormat against the task frameworks themselves: each generated state is built
with the framework's own library (tests/frameworks/: Python peers in .venv-peers,
BullMQ under Node, Sidekiq under Ruby) and counted by its own count API; the scaler's
count of every state it offers must equal it, on a real redis-server.

``KQS_FRAMEWORK_STATES`` sets how many states per framework (default 200).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.brokers.redis.formats import FORMATS, SCAN_LIMIT, slot
from scaler.errors import MetadataError, UnsupportedState
from scaler.registry import Triggers
from tests.brokers import RedisCluster, RedisProcess, RedisSentinel
from tests.conftest import REDIS_PASSWORD, evaluate
from tests.frameworks.peers import Peer

STATES = int(os.environ.get("KQS_FRAMEWORK_STATES", "200"))


@pytest.fixture
async def triggers() -> Iterator[Triggers]:
    t = Triggers({"redis": RedisAdapter(timeout=5)})
    yield t  # type: ignore[misc]
    await t.aclose()


def _counts(rng: random.Random, *names: str, most: int = 6) -> dict[str, int]:
    return {name: rng.choice([0, 0, rng.randint(1, most)]) for name in names}


def celery_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    steps = sorted(rng.sample(range(10), rng.randint(1, 5))) if rng.random() < 0.5 else None
    settings = {
        "queue": rng.choice(["celery", "emails", "a:b"]),
        "steps": steps,
        "sep": rng.choice([None, None, ":", "|"]),
        "prefix": rng.choice([None, "team-a:"]),
    }
    priorities = [rng.randint(0, 9) for _ in range(rng.randint(0, 14))]
    return "python", settings, {"priorities": priorities, "other": rng.randint(0, 2)}


def rq_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    prefixed = i % 4 == 3
    settings = {
        "queue": rng.choice(["default", "emails"]),
        "prefix": "team-a" if prefixed else None,
    }
    state = {**_counts(rng, "ready", "due", "future", "active", "retries"),
             "other": rng.randint(0, 2)}  # fmt: skip
    state["ready"] = max(state["ready"], state["active"])  # a worker takes what is queued
    return ("rq-prefixed" if prefixed else "python"), settings, state


def arq_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    settings = {"queue": rng.choice(["arq:queue", "emails"])}
    state = {**_counts(rng, "ready", "due", "future"), "other": rng.randint(0, 2)}
    state["retries"] = rng.randint(1, 3) if i % 5 == 2 else 0
    state["active"] = rng.randint(1, 3) if i % 5 == 0 else 0
    return "arq", settings, state


def dramatiq_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    settings = {"queue": rng.choice(["default", "emails"]), "prefix": rng.choice([None, "team"])}
    return "python", settings, {**_counts(rng, "ready", "due", "future", "active"),
                                "other": rng.randint(0, 2)}  # fmt: skip


def huey_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    settings = {"queue": rng.choice(["huey", "my-app"]), "priority": rng.random() < 0.5}
    return "python", settings, {**_counts(rng, "ready", "due", "future"),
                                "other": rng.randint(0, 2)}  # fmt: skip


def bullmq_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    settings = {"queue": rng.choice(["emails", "video"]), "prefix": rng.choice([None, "team"])}
    state = {
        **_counts(rng, "ready", "prioritized", "due", "future", "active", "retries"),
        "paused": rng.random() < 0.25,
        "other": rng.randint(0, 2),
    }
    return "bullmq", settings, state


def sidekiq_case(rng: random.Random, i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    settings = {"queue": rng.choice(["default", "mailers"])}
    state = {
        **_counts(rng, "ready", "due", "future", "retry_due", "retry_future"),
        "other": rng.randint(0, 3),
        "active": rng.randint(1, 2) if i in (0, 1) else 0,
    }
    return "sidekiq", settings, state


CASES: dict[str, Callable[[random.Random, int], tuple[str, dict[str, Any], dict[str, Any]]]] = {
    "celery": celery_case,
    "rq": rq_case,
    "arq": arq_case,
    "dramatiq": dramatiq_case,
    "huey": huey_case,
    "bullmq": bullmq_case,
    "sidekiq": sidekiq_case,
}


def metadata(server: RedisProcess, framework: str, settings: dict[str, Any]) -> dict[str, str]:
    md = {"scalerType": "redis", "address": server.address, "queueFormat": framework,
          "queueName": settings["queue"]}  # fmt: skip
    if settings.get("prefix") is not None:
        md["keyPrefix"] = settings["prefix"]
    if settings.get("steps") is not None:
        md["prioritySteps"] = ",".join(map(str, settings["steps"]))
    if settings.get("sep") is not None:
        md["prioritySeparator"] = settings["sep"]
    return md


# 200 states, each built by the framework (workers started, jobs failed and retried):
# on a busy machine that outlasts the suite's 60 s default, and a test cut off mid-request
# would leave its answer unread on the shared peer for the next test to take.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("framework", list(CASES))
async def test_counts_equal_the_frameworks_own(
    framework: str, peers: dict[str, Peer], redis_db: RedisProcess, triggers: Triggers
) -> None:
    rng = random.Random(f"{framework}-20261202")
    url = f"redis://{redis_db.address}/0"
    offered = sorted(FORMATS[framework].offered)
    differences: list[str] = []
    seen: dict[str, int] = dict.fromkeys(offered, 0)
    for i in range(STATES):
        which, settings, state = CASES[framework](rng, i)
        truth = peers[which].build(
            {"framework": framework, "url": url, "settings": settings, "state": state}
        )
        assert sorted(truth) == offered, f"the peer counts {sorted(truth)}, we offer {offered}"
        md = metadata(redis_db, framework, settings)
        for name in offered:
            ours, _ = await evaluate(triggers, {**md, "include": name})
            seen[name] += truth[name] > 0
            if ours != truth[name]:
                differences.append(f"state {i} {settings} {state}: {name} {ours} != {truth[name]}")
        everything, _ = await evaluate(triggers, {**md, "include": ",".join(offered)})
        if everything != sum(truth.values()):
            differences.append(f"state {i}: all states {everything} != {sum(truth.values())}")
    print(
        f"{framework}: {STATES} states, non-zero per state {seen}, {len(differences)} differences"
    )
    assert not differences, "\n".join(differences[:20])
    # the generator reached every state the format offers
    assert all(seen.values()), seen


@pytest.mark.parametrize("framework", list(FORMATS))
def test_refused_states_name_the_framework_and_the_reason(framework: str) -> None:
    t = Triggers({"redis": RedisAdapter(timeout=1)})
    for state, reason in FORMATS[framework].refused.items():
        md = {"scalerType": "redis", "address": "127.0.0.1:6379", "queueFormat": framework,
              "queueName": "q", "include": state}  # fmt: skip
        with pytest.raises(MetadataError) as caught:
            t.parse(md)
        assert framework in str(caught.value)
        assert reason in str(caught.value)


def test_hash_slots_are_the_clusters_own(redis_cluster: RedisCluster) -> None:
    """The one-slot rule for redis-cluster uses Redis Cluster's CLUSTER KEYSLOT."""
    client = redis_cluster.client()
    rng = random.Random(7)
    names = ["{bull}:video:wait", "celery\x06\x163", "rq:queue:{a}", "x{}{y}", "{}z", "é{ü}"]
    names += ["".join(rng.choice("ab{}:x") for _ in range(rng.randint(0, 12))) for _ in range(300)]
    for name in names:
        assert slot(name) == client.cluster_keyslot(name), name


async def test_a_scan_past_its_bound_is_an_error_not_a_guess(
    redis_db: RedisProcess, triggers: Triggers
) -> None:
    """A tenant's queue with more delayed messages than a count may decode: refused."""
    client = redis_db.client()
    eta = json.dumps({"options": {"eta": 0}})
    for start in range(0, SCAN_LIMIT + 1, 5000):
        part = range(start, min(start + 5000, SCAN_LIMIT + 1))
        client.hset("dramatiq:default.DQ.msgs", mapping={f"m{i}": eta for i in part})
    md = {"scalerType": "redis", "address": redis_db.address, "queueFormat": "dramatiq",
          "queueName": "default"}  # fmt: skip
    with pytest.raises(UnsupportedState) as caught:
        await evaluate(triggers, md)
    assert f"{SCAN_LIMIT:,}" in str(caught.value)
    assert str(SCAN_LIMIT + 1) in str(caught.value)
    client.hdel("dramatiq:default.DQ.msgs", "m0")  # at the bound: counted, every one due
    assert await evaluate(triggers, md) == (SCAN_LIMIT, True)


@pytest.mark.parametrize("framework", list(FORMATS))
async def test_a_key_of_another_type_is_an_error_naming_it(
    framework: str, redis_db: RedisProcess, triggers: Triggers
) -> None:
    md = {"scalerType": "redis", "address": redis_db.address, "queueFormat": framework,
          "queueName": "q"}  # fmt: skip
    first = triggers.parse(md).query.keys[0]
    redis_db.client().set(first, "a string")
    with pytest.raises(UnsupportedState) as caught:
        await evaluate(triggers, md)
    assert f'"{first}"' in str(caught.value)
    assert "is a string" in str(caught.value)


BUSY = {"ready": 2, "due": 2, "future": 1, "active": 1, "retries": 0, "other": 1}


@pytest.mark.parametrize(("framework", "peer"), [("rq", "python"), ("bullmq", "bullmq")])
async def test_connection_keys_keep_their_meaning(
    framework: str, peer: str, peers: dict[str, Peer], redis_password_server: RedisProcess,
    redis_sentinel: RedisSentinel, triggers: Triggers,
) -> None:  # fmt: skip
    """A password and databaseIndex, and a sentinel-found master, read the queue the
    framework filled there, as they read a list."""
    state = {**BUSY, "prioritized": 1, "paused": False}
    server = redis_password_server
    url = f"redis://:{REDIS_PASSWORD}@{server.address}/3"
    truth = peers[peer].build({"framework": framework, "url": url,
                               "settings": {"queue": "jobs"}, "state": state})  # fmt: skip
    md = {"scalerType": "redis", "address": server.address, "password": REDIS_PASSWORD,
          "databaseIndex": "3", "queueFormat": framework, "queueName": "jobs"}  # fmt: skip
    assert await evaluate(triggers, md) == (truth["ready"], truth["ready"] > 0)
    assert (await evaluate(triggers, {**md, "databaseIndex": "0"}))[0] == 0  # another db

    url = f"redis://{redis_sentinel.master.address}/0"
    truth = peers[peer].build({"framework": framework, "url": url,
                               "settings": {"queue": "jobs"}, "state": state})  # fmt: skip
    sentinel = {"scalerType": "redis-sentinel", "addresses": redis_sentinel.address,
                "sentinelMaster": RedisSentinel.MASTER, "queueFormat": framework,
                "queueName": "jobs", "include": "ready,scheduled"}  # fmt: skip
    assert (await evaluate(triggers, sentinel))[0] == truth["ready"] + truth["scheduled"]


async def test_bullmq_on_a_redis_cluster_with_a_hash_tagged_prefix(
    peers: dict[str, Peer], redis_db: RedisProcess, redis_cluster: RedisCluster,
    triggers: Triggers,
) -> None:  # fmt: skip
    """BullMQ's own keys (made by BullMQ on a server, copied byte for byte with DUMP and
    RESTORE into one slot of a real cluster) counted by the redis-cluster scalerType."""
    state = {**BUSY, "prioritized": 2, "paused": False}
    truth = peers["bullmq"].build({"framework": "bullmq", "url": f"redis://{redis_db.address}/0",
                                   "settings": {"queue": "video", "prefix": "{bull}"},
                                   "state": state})  # fmt: skip
    source, cluster = redis_db.client(), redis_cluster.client()
    keys = list(source.scan_iter("{bull}:video:*"))
    assert keys, "BullMQ made no keys"
    for key in keys:
        cluster.restore(key, 0, source.dump(key), replace=True)
    md = {"scalerType": "redis-cluster", "addresses": redis_cluster.addresses,
          "password": REDIS_PASSWORD, "queueFormat": "bullmq", "queueName": "video",
          "keyPrefix": "{bull}", "include": "ready,scheduled,active"}  # fmt: skip
    value, _ = await evaluate(triggers, md)
    assert value == truth["ready"] + truth["scheduled"] + truth["active"]
