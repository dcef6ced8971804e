"""KEDA's typed-config grammar (scalersconfig/typed_config.go), row by row: values
are trimmed, numbers are JSON (encoding/json), booleans strconv.ParseBool, list items
trimmed. The live differential (tests/keda) checks a sample of these rows against
KEDA's own scalers on real brokers."""

from __future__ import annotations

import pytest

from scaler.brokers.rabbitmq.client import RabbitAdapter
from scaler.brokers.redis.client import RedisAdapter
from scaler.brokers.sqs.client import SqsAdapter
from scaler.errors import MetadataError
from scaler.registry import Triggers

TRIGGERS = Triggers(
    {
        "redis": RedisAdapter(timeout=1),
        "sqs": SqsAdapter(timeout=1),
        "rabbitmq": RabbitAdapter(timeout=1),
    }
)


def redis_list(**kv: str) -> dict[str, str]:
    return {"scalerType": "redis", "listName": "jobs", "address": "redis:6379", **kv}


def rabbit(**kv: str) -> dict[str, str]:
    return {"scalerType": "rabbitmq", "queueName": "q", "host": "amqp://h:5672/", **kv}


def sqs(**kv: str) -> dict[str, str]:
    return {"scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "eu-west-1", **kv}


@pytest.mark.parametrize(
    ("text", "target"),
    [("7", 7.0), (" 7 ", 7.0), ("\t12\n", 12.0), ("9223372036854775807", 9223372036854775807.0)],
)
def test_integers_accepted(text: str, target: float) -> None:
    assert TRIGGERS.parse(redis_list(listLength=text)).target == target


@pytest.mark.parametrize(
    "text",
    ["+5", "007", "5.0", ".5", "1_000", "0x10", "1e3", "٣", "5 5", "NaN", "9223372036854775808",
     "-9223372036854775809", "10" * 200],
)  # fmt: skip
def test_integers_refused_name_the_key(text: str) -> None:
    with pytest.raises(MetadataError, match='parameter "listLength"') as err:
        TRIGGERS.parse(redis_list(listLength=text))
    assert len(err.value.message) < 400  # a long value is cut short


@pytest.mark.parametrize(
    ("text", "target"), [("2.5", 2.5), (" 3 ", 3.0), ("1e3", 1000.0), ("0.001", 0.001)]
)
def test_floats_accepted(text: str, target: float) -> None:
    assert TRIGGERS.parse(rabbit(mode="QueueLength", value=text)).target == target


@pytest.mark.parametrize("text", ["+1", ".5", "1.", "01", "NaN", "Inf", "1e400", "0x1p3", "1_0"])
def test_floats_refused_name_the_key(text: str) -> None:
    with pytest.raises(MetadataError, match='parameter "value"'):
        TRIGGERS.parse(rabbit(mode="QueueLength", value=text))


@pytest.mark.parametrize(
    ("text", "value"),
    [(" true", True), ("1", True), ("T", True), ("TRUE", True), ("f", False), (" False ", False)],
)
def test_booleans_are_go_parse_bool_after_trimming(text: str, value: bool) -> None:
    trigger = TRIGGERS.parse(sqs(scaleOnDelayed=text))
    assert ("ApproximateNumberOfMessagesDelayed" in trigger.query.attributes) is value


@pytest.mark.parametrize("text", ["yes", "on", "tRUE", "2"])
def test_booleans_refused(text: str) -> None:
    with pytest.raises(MetadataError, match='parameter "scaleOnDelayed"'):
        TRIGGERS.parse(sqs(scaleOnDelayed=text))


def test_list_items_are_trimmed() -> None:
    trigger = TRIGGERS.parse(
        {"scalerType": "redis-cluster", "listName": "q", "hosts": " a , b,c ", "ports": "1, 2 ,3"}
    )
    assert trigger.query.conn.addresses == (("a", 1), ("b", 2), ("c", 3))


def test_strings_are_trimmed() -> None:
    assert TRIGGERS.parse(redis_list(listName="  jobs ")).metric_name == "redis-jobs"
