"""``measure: age`` keys on every queue scalerType (docs/age.md): parsing, the rules
that refuse a source without times, the spec KEDA gets, and the rule's arithmetic."""

from __future__ import annotations

import pytest

from scaler.brokers.memory.client import MemoryAdapter
from scaler.brokers.rabbitmq.metadata import QueueStats
from scaler.errors import MetadataError
from scaler.registry import KINDS, Triggers
from scaler.trigger import Aged, OldestAge

REDIS = {"scalerType": "redis", "address": "127.0.0.1:6379", "listName": "jobs"}
STREAM = {"scalerType": "redis-streams", "address": "127.0.0.1:6379", "stream": "s"}
SQS = {"scalerType": "aws-sqs-queue", "awsRegion": "eu-west-1",
       "queueURL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q"}  # fmt: skip
RABBIT = {"scalerType": "rabbitmq", "host": "http://u:p@127.0.0.1:15672/", "queueName": "q"}
AGE = {"measure": "age", "targetAge": "60"}


@pytest.fixture
def triggers() -> Triggers:
    # parsing needs no connection: one adapter object stands in for every broker
    adapter = MemoryAdapter()
    return Triggers({kind.broker.name: adapter for kind in KINDS.values()})


@pytest.mark.parametrize(
    ("metadata", "name"),
    [
        (REDIS, "redis-jobs-age"),
        ({**REDIS, "include": "ready,active"}, "redis-jobs-age"),
        ({**REDIS, "listName": "", "queueFormat": "rq", "queueName": "default"},
         "redis-rq-default-age"),
        (STREAM, "redis-streams-s-age"),
        ({**STREAM, "consumerGroup": "g", "lagCount": "3"}, "redis-streams-s-age"),
        (SQS, "aws-sqs-q-age"),
        (RABBIT, "rabbitmq-q-age"),
    ],
)  # fmt: skip
def test_an_age_trigger_is_named_apart_and_targets_target_age(
    triggers: Triggers, metadata: dict[str, str], name: str
) -> None:
    trigger = triggers.parse({**metadata, **AGE, "activationAge": "45.5"})
    assert (trigger.metric_name, trigger.target, trigger.activation) == (name, 60.0, 45.5)
    assert trigger.measures_age
    length = triggers.parse(metadata)
    assert not length.measures_age
    assert length.read_key != trigger.read_key  # the age read is its own


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ({**REDIS, "measure": "Age"}, 'parameter "measure" value "Age" must be one of "length", "age"'),
        ({**REDIS, "measure": "age"}, '"targetAge" is required with measure "age"'),
        ({**REDIS, **AGE, "targetAge": "0"}, 'parameter "targetAge" value "0" must be greater than 0'),
        ({**REDIS, **AGE, "targetAge": "1m"}, 'parameter "targetAge" value "1m" must be a number'),
        ({**REDIS, **AGE, "activationAge": "-1"}, '"activationAge" value "-1" must be 0 or greater'),
        ({**REDIS, "targetAge": "60"}, '"targetAge" applies to measure "age"'),
        ({**REDIS, "ageField": "at"}, '"ageField" applies to measure "age" on queueFormat "list"'),
        ({**REDIS, "listName": "", "queueFormat": "celery", "queueName": "celery", **AGE},
         "Celery's messages carry no enqueue time"),
        ({**REDIS, "listName": "", "queueFormat": "huey", "queueName": "huey", **AGE},
         "Huey's queued messages carry no enqueue time"),
        ({**REDIS, "scalerType": "redis-cluster", "listName": "", "queueFormat": "rq",
          "queueName": "{q}", "keyPrefix": "{q}", **AGE}, "Redis Cluster may hold on another node"),
        ({**RABBIT, "host": "amqp://u:p@127.0.0.1:5672/", **AGE}, "AMQP reports no message times"),
        ({**RABBIT, "mode": "QueueLength", "value": "5", **AGE}, 'takes its target from "targetAge"'),
    ],
)  # fmt: skip
def test_bad_age_metadata_names_the_key(
    triggers: Triggers, metadata: dict[str, str], needle: str
) -> None:
    with pytest.raises(MetadataError) as refused:
        triggers.parse(metadata)
    assert needle in refused.value.message


def test_get_metric_spec_still_names_an_age_trigger_that_lacks_its_target(
    triggers: Triggers,
) -> None:
    """KEDA hides a failing GetMetricSpec: the lenient spec keeps the -age name, and
    GetMetrics reports the missing targetAge."""
    assert triggers.spec({**REDIS, "measure": "age"}) == ("redis-jobs-age", 1.0)


def test_an_sqs_age_read_may_only_go_where_cloudwatch_is(triggers: Triggers) -> None:
    trigger = triggers.parse({**SQS, **AGE})
    hosts = [d.host for d in trigger.query.destinations()]
    assert hosts == ["sqs.eu-west-1.amazonaws.com", "monitoring.eu-west-1.amazonaws.com"]
    local = triggers.parse({**SQS, **AGE, "awsEndpoint": "http://127.0.0.1:5000"})
    assert [(d.host, d.port) for d in local.query.destinations()] == [("127.0.0.1", 5000)]


@pytest.mark.parametrize(
    ("sample", "now", "expected"),
    [
        (Aged(3, oldest=1000.0), 1090.5, (90.5, True)),
        (Aged(3, oldest=1000.0), 1030.0, (30.0, False)),  # strictly greater, as KEDA
        (Aged(0, oldest=None), 5000.0, (0.0, False)),  # nothing waits
        (Aged(2, oldest=2000.0), 1000.0, (0.0, False)),  # a time ahead of the clock
        (Aged(2, age=42.0), 0.0, (42.0, True)),  # a reading (SQS), not aged further
        (QueueStats(3, 3, oldest=1000.0), 1100.0, (100.0, True)),
        (QueueStats(0, 0), 1100.0, (0.0, False)),
    ],
)
def test_the_age_rule(sample: Aged | QueueStats, now: float, expected: tuple[float, bool]) -> None:
    assert OldestAge(30.0)(sample, now) == expected
