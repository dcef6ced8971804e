"""queueFormat's metadata rules: which keys go with which format, the keys each
format reads (as the frameworks' own code names them; tests/integration/
test_frameworks.py checks the counts against the frameworks), and the errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.brokers.redis.client import RedisAdapter, _format_count
from scaler.brokers.redis.formats import slot
from scaler.brokers.redis.metadata import RedisFormatQuery, RedisListQuery
from scaler.errors import MetadataError, UnsupportedState
from scaler.registry import Triggers

TRIGGERS = Triggers({"redis": RedisAdapter(timeout=1)})
BASE = {"scalerType": "redis", "address": "redis:6379"}


def query(**kv: str) -> RedisFormatQuery:
    found = TRIGGERS.parse({**BASE, **kv}).query
    assert isinstance(found, RedisFormatQuery)
    return found


@pytest.mark.parametrize(
    ("metadata", "keys"),
    [
        ({"queueFormat": "celery", "queueName": "celery"},
         ("celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169")),
        ({"queueFormat": "celery", "queueName": "q", "prioritySteps": "0, 5",
          "prioritySeparator": ":", "keyPrefix": "app:"}, ("app:q", "app:q:5")),
        ({"queueFormat": "celery", "queueName": "q", "prioritySteps": "2,4"},
         ("q\x06\x162", "q\x06\x164")),
        ({"queueFormat": "rq", "queueName": "default"},
         ("rq:queue:default", "rq:scheduled:default", "rq:wip:default")),
        ({"queueFormat": "rq", "queueName": "high", "keyPrefix": "team"},
         ("team:queue:high", "team:scheduled:high", "team:wip:high")),
        ({"queueFormat": "arq", "queueName": "arq:queue"}, ("arq:queue",)),
        ({"queueFormat": "dramatiq", "queueName": "default"},
         ("dramatiq:default", "dramatiq:default.msgs", "dramatiq:default.DQ",
          "dramatiq:default.DQ.msgs")),
        ({"queueFormat": "huey", "queueName": "my-app"},
         ("huey.redis.myapp", "huey.schedule.myapp")),
        ({"queueFormat": "bullmq", "queueName": "video", "keyPrefix": "{b}"},
         tuple(f"{{b}}:video:{p}" for p in
               ("wait", "paused", "prioritized", "delayed", "active", "meta"))),
        ({"queueFormat": "sidekiq", "queueName": "mailers"},
         ("queue:mailers", "schedule", "retry", "processes")),
    ],
)  # fmt: skip
def test_the_keys_each_format_reads(metadata: dict[str, str], keys: tuple[str, ...]) -> None:
    assert query(**metadata).keys == keys


def test_the_default_is_keda_list_and_include_defaults_to_ready() -> None:
    assert isinstance(TRIGGERS.parse({**BASE, "listName": "jobs"}).query, RedisListQuery)
    assert query(queueFormat="rq", queueName="default").states == ("ready",)
    assert query(queueFormat="rq", queueName="d", include="active, ready").states == (
        "ready",
        "active",
    )


def test_the_metric_name_names_the_format_and_queue() -> None:
    trigger = TRIGGERS.parse({**BASE, "queueFormat": "bullmq", "queueName": "video.hd"})
    assert trigger.metric_name == "redis-bullmq-video-hd"


def test_include_shares_no_read_with_another_include_but_targets_do() -> None:
    a = TRIGGERS.parse({**BASE, "queueFormat": "rq", "queueName": "d", "listLength": "3"})
    b = TRIGGERS.parse({**BASE, "queueFormat": "rq", "queueName": "d", "listLength": "9"})
    c = TRIGGERS.parse({**BASE, "queueFormat": "rq", "queueName": "d", "include": "active"})
    assert a.read_key == b.read_key
    assert a.read_key != c.read_key


@pytest.mark.parametrize(
    ("metadata", "needles"),
    [
        ({"queueFormat": "celery", "queueName": "c", "listName": "c"},
         ('"listName"', '"queueName"', "celery")),
        ({"queueFormat": "celery"}, ('"queueName" is required', "celery")),
        ({"listName": "jobs", "queueName": "c"}, ('"queueName"', "framework queueFormat")),
        ({"listName": "jobs", "include": "scheduled"}, ('"include"', "scheduled", "expired")),
        ({"listName": "jobs", "include": "paused"}, ('"include"', "paused", "work")),
        ({"listName": "jobs", "keyPrefix": "x"}, ('"keyPrefix"',)),
        ({"queueFormat": "kafka", "queueName": "c"}, ('"queueFormat"', "kafka", "sidekiq")),
        ({"queueFormat": "rq", "queueName": "c", "include": "done"}, ('"include"', "done")),
        ({"queueFormat": "celery", "queueName": "c", "include": "active"},
         ("celery", "active", "unacked")),
        ({"queueFormat": "huey", "queueName": "c", "include": "active"}, ("huey", "active")),
        ({"queueFormat": "rq", "queueName": "c", "include": "paused"}, ("rq", "paused")),
        ({"queueFormat": "arq", "queueName": "c", "keyPrefix": "x"}, ('"keyPrefix"', "arq")),
        ({"queueFormat": "rq", "queueName": "c", "prioritySteps": "0,3"},
         ('"prioritySteps"', "celery")),
        ({"queueFormat": "celery", "queueName": "c", "prioritySteps": "3,0"},
         ('"prioritySteps"', "ascending")),
        ({"queueFormat": "celery", "queueName": "c", "prioritySteps": "0,x"},
         ('"prioritySteps"', "integers")),
        ({"queueFormat": "celery", "queueName": "c", "prioritySteps": "0,0"},
         ('"prioritySteps"', "distinct")),
        ({"queueFormat": "rq", "queueName": "c", "keyPrefix": "a b"}, ('"keyPrefix"', "RQ")),
        ({"queueFormat": "huey", "queueName": "--"}, ('"queueName"', "Huey")),
    ],
)  # fmt: skip
def test_bad_format_metadata(metadata: dict[str, str], needles: tuple[str, ...]) -> None:
    with pytest.raises(MetadataError) as caught:
        TRIGGERS.parse({**BASE, **metadata})
    for needle in needles:
        assert needle in str(caught.value)


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ({"queueFormat": "arq", "queueName": "arq:queue"}, "does not run on Redis Cluster"),
        ({"queueFormat": "sidekiq", "queueName": "default"}, "does not run on Redis Cluster"),
        ({"queueFormat": "bullmq", "queueName": "video"}, "one hash slot"),
        ({"queueFormat": "celery", "queueName": "celery"}, "one hash slot"),
    ],
)
def test_redis_cluster_needs_one_slot_and_a_framework_that_runs_there(
    metadata: dict[str, str], needle: str
) -> None:
    cluster = {"scalerType": "redis-cluster", "addresses": "a:1,b:2", **metadata}
    with pytest.raises(MetadataError) as caught:
        TRIGGERS.parse(cluster)
    assert needle in str(caught.value)
    tagged = {**cluster, "queueFormat": "bullmq", "queueName": "video", "keyPrefix": "{bull}"}
    assert isinstance(TRIGGERS.parse(tagged).query, RedisFormatQuery)


def test_slot_is_redis_clusters_crc16() -> None:
    # Redis Cluster specification's own examples (CLUSTER KEYSLOT answers the same)
    assert slot("123456789") == 0x31C3 % 16384
    assert slot("{user1000}.following") == slot("{user1000}.followers")


ANSWERS = st.recursive(
    st.one_of(st.none(), st.integers(-(2**70), 2**70), st.binary(max_size=12),
              st.text(max_size=12), st.floats(allow_nan=True)),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=20,
)  # fmt: skip


@given(answer=ANSWERS)
@settings(max_examples=400, deadline=None)
def test_any_answer_to_a_count_is_a_number_or_a_named_error(answer: object) -> None:
    """A server that answers EVALSHA with anything (a bent proxy, another program on the
    port): a count, or FAILED_PRECONDITION naming the format, never another exception."""
    q = query(queueFormat="bullmq", queueName="q", include="ready,paused")
    counted = (isinstance(answer, list) and len(answer) == 5 and answer[0] == 1
               and all(type(n) is int for n in answer[1:]))  # fmt: skip
    if counted:
        assert isinstance(answer, list)
        assert _format_count(answer, q) == answer[1] + answer[4]
        return
    with pytest.raises(UnsupportedState) as caught:
        _format_count(answer, q)
    assert "bullmq" in str(caught.value)
    assert caught.value.code == "FAILED_PRECONDITION"
