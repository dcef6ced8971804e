"""Table-driven metadata rules for rabbitmq (DESIGN §4), and each mode's value and
activation rule, as in KEDA's rabbitmq_scaler.go."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.brokers.rabbitmq.client import RabbitAdapter
from scaler.brokers.rabbitmq.metadata import (
    QueueStats,
    RabbitMetadata,
    RabbitQuery,
    RabbitRule,
    parse_timeout,
)
from scaler.errors import MetadataError
from scaler.metadata import Secret
from scaler.registry import Triggers

TRIGGERS = Triggers({"rabbitmq": RabbitAdapter(timeout=1)})
AMQP = "amqp://user:pw@rabbit:5672/vh"
HTTP = "http://user:pw@rabbit:15672/vh"


def rmq(host: str = AMQP, **kv: str) -> dict[str, str]:
    return {"scalerType": "rabbitmq", "host": host, "queueName": "jobs", **kv}


GOOD: list[tuple[dict[str, str], dict[str, Any]]] = [
    (rmq(), {"mode": "QueueLength", "target": 20, "protocol": "amqp", "metric": "rabbitmq-jobs"}),  # neither = QueueLength 20
    (rmq(mode="QueueLength", value="7"), {"mode": "QueueLength", "target": 7}),
    (rmq(queueLength="9"), {"mode": "QueueLength", "target": 9}),  # legacy key
    (rmq(HTTP, mode="MessageRate", value="2.5"), {"mode": "MessageRate", "target": 2.5, "protocol": "http"}),
    (rmq(HTTP, mode="DeliverGetRate", value="1"), {"mode": "DeliverGetRate"}),
    (rmq(HTTP, mode="PublishedToDeliveredRatio", value="1.5"), {"mode": "PublishedToDeliveredRatio"}),
    (rmq(HTTP, mode="ExpectedQueueConsumptionTime", value="30"), {"mode": "ExpectedQueueConsumptionTime"}),
    (rmq(activationValue="3.5"), {"activation": 3.5}),
    (rmq(protocol="amqp"), {"protocol": "amqp"}),
    (rmq("amqps://rabbit/vh", protocol="auto"), {"protocol": "amqp"}),
    (rmq("https://rabbit:15671", protocol="http"), {"protocol": "http", "vhost": "%2F"}),
    (rmq(HTTP), {"vhost": "vh", "base": "http://rabbit:15672"}),
    (rmq("http://rabbit:15672/"), {"vhost": "%2F"}),
    (rmq("http://rabbit:15672/%2F"), {"vhost": "%2F"}),
    (rmq("http://rabbit/prefix/vh"), {"vhost": "vh", "base": "http://rabbit/prefix"}),
    (rmq(HTTP, vhostName="team/one b"), {"vhost": "team%2Fone%20b"}),
    (rmq(vhostName="other"), {"amqp_url_ends": "/other"}),
    (rmq(HTTP, useRegex="true", operation="max", pageSize="500"), {"regex": True, "operation": "max", "page_size": 500}),
    (rmq(HTTP, excludeUnacknowledged="true"), {"exclude": True}),
    (rmq(HTTP, timeout="1500"), {"http_timeout": 1.5}),
    (rmq(HTTP, timeout="2s"), {"http_timeout": 2.0}),
    (rmq(HTTP, timeout="1m30s"), {"http_timeout": 90.0}),
    ({"scalerType": "rabbitmq", "hostFromEnv": AMQP, "queueName": "jobs"}, {"protocol": "amqp"}),
    (rmq(HTTP, usernameFromEnv="u2", passwordFromEnv="p2"), {"username": Secret("u2")}),
    (rmq(queueName="orders #1"), {"metric": "rabbitmq-orders+-231"}),  # KEDA: QueryEscape, then normalise
]  # fmt: skip

BAD: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({"scalerType": "rabbitmq", "host": AMQP}, ('"queueName" is required',)),
    ({"scalerType": "rabbitmq", "queueName": "q"}, ('"host"', "required")),
    (rmq("ftp://rabbit"), ('scheme "ftp"',)),
    (rmq(protocol="kafka"), ('"protocol"', '"kafka"', '"amqp"')),
    (rmq(protocol="http"), ('"protocol" value "http" does not fit a amqp:// host',)),
    (rmq(mode="MessageRate", value="1"), ('mode "MessageRate" needs the HTTP protocol',)),
    (rmq(mode="ExpectedQueueConsumptionTime", value="1"), ("needs the HTTP protocol",)),
    (rmq(HTTP, mode="Banana", value="1"), ('"mode" value "Banana"', "QueueLength")),
    (rmq(HTTP, mode="QueueLength"), ('"value" must be given with "mode"',)),
    (rmq(HTTP, value="3"), ('"mode" must be given with "value"',)),
    (rmq(queueLength="5", mode="QueueLength", value="5"), ('"queueLength" is deprecated',)),
    (rmq(queueLength="5", value="5"), ('"queueLength" is deprecated',)),
    (rmq(value="x", mode="QueueLength"), ('"value"', '"x"', "a number")),
    (rmq(mode="QueueLength", value="-2"), ('"value"', "greater than 0")),
    (rmq(activationValue="many"), ('"activationValue"', '"many"')),
    (rmq(useRegex="true"), ('"useRegex" needs the HTTP protocol',)),
    (rmq(excludeUnacknowledged="true"), ('"excludeUnacknowledged" needs the HTTP protocol',)),
    (rmq(timeout="5s", mode="QueueLength", value="5"), ('"timeout"', "only with the HTTP protocol")),
    (rmq(HTTP, timeout="-5s"), ('"timeout"', '"-5s"')),
    (rmq(HTTP, timeout="soon"), ('"timeout"', '"soon"')),
    (rmq(HTTP, operation="median"), ('"operation"', '"median"', '"avg"')),
    (rmq(HTTP, pageSize="0"), ('"pageSize"', "1 or greater")),
    (rmq(HTTP, useRegex="maybe"), ('"useRegex"', '"maybe"')),
    (rmq(HTTP, useRegex="true", queueName="(["), ('"queueName"', '"(["', "not a valid regular expression")),
    (rmq(HTTP, usernameFromEnv="u"), ('"usernameFromEnv" and "passwordFromEnv"',)),
]  # fmt: skip


def _observed(metadata: dict[str, str]) -> dict[str, Any]:
    trigger = TRIGGERS.parse(metadata)
    query = trigger.query
    assert isinstance(query, RabbitQuery)
    rule = trigger.rule
    assert isinstance(rule, RabbitRule)
    return {
        "mode": rule.mode,
        "target": trigger.target,
        "activation": trigger.activation,
        "protocol": query.server.protocol,
        "metric": trigger.metric_name,
        "vhost": query.vhost,
        "base": query.server.url.reveal(),
        "amqp_url_ends": query.server.url.reveal()[-6:],
        "regex": query.use_regex,
        "operation": query.operation,
        "page_size": query.page_size,
        "exclude": rule.exclude_unacknowledged,
        "http_timeout": query.server.http_timeout,
        "username": query.server.username,
    }


@pytest.mark.parametrize(("metadata", "expected"), GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_good_metadata(metadata: dict[str, str], expected: dict[str, Any]) -> None:
    observed = _observed(metadata)
    for name, want in expected.items():
        assert observed[name] == want, name


@pytest.mark.parametrize(("metadata", "needles"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_metadata(metadata: dict[str, str], needles: tuple[str, ...]) -> None:
    with pytest.raises(MetadataError) as err:
        TRIGGERS.parse(metadata)
    for needle in needles:
        assert needle in err.value.message, (needle, err.value.message)


def test_credentials_in_the_host_never_reach_messages_or_names() -> None:
    trigger = TRIGGERS.parse(rmq("amqp://admin:hunter2@rabbit/vh"))
    assert "hunter2" not in trigger.query.server.display
    assert "hunter2" not in repr(trigger)
    with pytest.raises(MetadataError) as err:
        TRIGGERS.parse(rmq("amqp://admin:hunter2@rabbit/vh", protocol="http"))
    assert "hunter2" not in err.value.message


S = QueueStats  # messages, ready, publish rate, deliver_get rate

RULES = [
    # mode, activation, exclude_unacked, sample, (value, active)
    ("QueueLength", 0, False, S(5, 3), (5, True)),
    ("QueueLength", 0, True, S(5, 3), (3, True)),
    ("QueueLength", 5, False, S(5, 3), (5, False)),  # strictly greater
    ("QueueLength", 0, False, S(0, 0), (0, False)),
    ("MessageRate", 1, False, S(0, 0, 2.5, 0), (2.5, True)),
    ("MessageRate", 1, False, S(3, 3, 0.5, 0), (0.5, True)),  # active: messages > activation
    ("MessageRate", 1, False, S(1, 1, 0.5, 0), (0.5, False)),
    ("DeliverGetRate", 1, False, S(9, 9, 0, 0.5), (0.5, False)),
    ("DeliverGetRate", 0, False, S(9, 9, 0, 0.5), (0.5, True)),
    ("PublishedToDeliveredRatio", 2, False, S(0, 0, 4, 0), (2, True)),  # publishing, nobody delivering
    ("PublishedToDeliveredRatio", 2, False, S(0, 0, 4, 1), (4, True)),
    ("PublishedToDeliveredRatio", 2, False, S(0, 0, 1, 1), (1, False)),
    ("PublishedToDeliveredRatio", 2, False, S(0, 0, 0, 1), (0, False)),
    ("ExpectedQueueConsumptionTime", 5, False, S(0, 0, 0, 0), (0, False)),  # empty: drained (KEDA #8033)
    ("ExpectedQueueConsumptionTime", 5, False, S(10, 10, 0, 0), (5, True)),  # nobody consuming
    ("ExpectedQueueConsumptionTime", 5, False, S(10, 10, 3, 2), (5.5, True)),  # (3-2)/2 + 10/2
    ("ExpectedQueueConsumptionTime", 10, False, S(10, 10, 2, 2), (5, False)),
    ("ExpectedQueueConsumptionTime", 10, True, S(10, 4, 2, 2), (2, False)),  # ready only
]  # fmt: skip


@pytest.mark.parametrize(("mode", "activation", "exclude", "sample", "expected"), RULES)
def test_mode_rules(
    mode: str, activation: float, exclude: bool, sample: QueueStats, expected: tuple[float, bool]
) -> None:
    assert RabbitRule(mode, activation, exclude)(sample, 0.0) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("250", 0.25), ("5s", 5), ("1.5s", 1.5), ("300ms", 0.3), ("1h2m3s", 3723)],
)
def test_timeout_forms(text: str, seconds: float) -> None:
    assert parse_timeout(text) == pytest.approx(seconds)


def _server(host: str, auth: dict[str, str]) -> Any:
    parsed = RabbitMetadata.parse(
        {"host": host, "queueName": "q"}, scaler_type="rabbitmq", auth=auth
    )
    server, _ = parsed.server()
    return server


def test_a_client_certificate_without_a_password_asks_for_sasl_external() -> None:
    """KEDA's buildAMQPConfig: tls enable, cert and key, no username/password and no
    password in the URL: SASL EXTERNAL (aiormq's ?auth=external)."""
    tls = {"tls": "enable", "cert": "CERT", "key": "KEY"}
    assert "auth=external" in _server("amqps://broker:5671/", tls).url.reveal()
    assert "auth=external" not in _server("amqps://u:p@broker:5671/", tls).url.reveal()
    assert (
        "auth=external"
        not in _server("amqps://broker:5671/", {**tls, "tls": "disable"}).url.reveal()
    )
    signed_in = RabbitMetadata.parse(
        {"host": "amqps://broker:5671/", "queueName": "q", "usernameFromEnv": "u",
         "passwordFromEnv": "p"}, scaler_type="rabbitmq", auth=tls,
    ).server()[0]  # fmt: skip
    assert "auth=external" not in signed_in.url.reveal()


def test_tls_parameters_never_come_from_trigger_metadata() -> None:
    parsed = RabbitMetadata.parse(
        {"host": "amqps://broker/", "queueName": "q", "tls": "enable", "ca": "PEM"},
        scaler_type="rabbitmq",
    )
    assert parsed.tls_param == ""
    assert parsed.ca is None
