"""Table-driven metadata rules for aws-sqs-queue (DESIGN §4), and error translation."""

from __future__ import annotations

from typing import Any

import pytest
from botocore import exceptions as bexc

from scaler.brokers.sqs.client import SqsAdapter, translate
from scaler.brokers.sqs.metadata import DELAYED, IN_FLIGHT, VISIBLE, SqsIdentity, SqsQuery
from scaler.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerPermissionError,
    BrokerThrottled,
    MetadataError,
    QueueNotFound,
)
from scaler.metadata import Secret
from scaler.registry import Triggers

TRIGGERS = Triggers({"sqs": SqsAdapter(timeout=1)})
URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"


def sqs(**kv: str) -> dict[str, str]:
    return {"scalerType": "aws-sqs-queue", "queueURL": URL, "awsRegion": "eu-west-1", **kv}


GOOD: list[tuple[dict[str, str], dict[str, Any]]] = [
    (sqs(), {"metric": "aws-sqs-jobs", "target": 5, "activation": 0, "attributes": (VISIBLE, IN_FLIGHT), "queue_url": URL}),
    (sqs(queueLength="10", activationQueueLength="2"), {"target": 10, "activation": 2}),
    (sqs(scaleOnInFlight="false"), {"attributes": (VISIBLE,)}),
    (sqs(scaleOnDelayed="true"), {"attributes": (VISIBLE, IN_FLIGHT, DELAYED)}),
    (sqs(scaleOnInFlight="false", scaleOnDelayed="true"), {"attributes": (VISIBLE, DELAYED)}),
    (sqs(queueURL="jobs"), {"metric": "aws-sqs-jobs", "queue_url": "", "queue_name": "jobs"}),
    (sqs(queueURL="orders.fifo"), {"metric": "aws-sqs-orders-fifo", "queue_name": "orders.fifo"}),
    ({"scalerType": "aws-sqs-queue", "queueURLFromEnv": URL, "awsRegion": "eu-west-1"}, {"queue_url": URL}),
    (sqs(queueURL="https://eu-west-1.queue.amazonaws.com/123456789012/jobs"), {"queue_name": "jobs"}),
    (sqs(queueURL="http://localhost:4566/000000000000/jobs", awsEndpoint="http://localhost:4566"), {"queue_name": "jobs", "endpoint": "http://localhost:4566"}),
    (sqs(identityOwner="operator"), {}),
    (sqs(awsAccessKeyID="AKID", awsSecretAccessKeyFromEnv="s"), {"access_key_id": Secret("AKID"), "secret_access_key": Secret("s")}),
    (sqs(awsAccessKeyIDFromEnv="AKID", awsSecretAccessKeyFromEnv="s", awsSessionTokenFromEnv="t"), {"session_token": Secret("t")}),
    (sqs(awsRoleArn="arn:aws:iam::123456789012:role/r", awsExternalId="x"), {"role_arn": "arn:aws:iam::123456789012:role/r", "external_id": Secret("x")}),
]  # fmt: skip

BAD: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({"scalerType": "aws-sqs-queue", "awsRegion": "eu-west-1"}, ('"queueURL" is required',)),
    ({"scalerType": "aws-sqs-queue", "queueURL": URL}, ('"awsRegion" is required',)),
    (sqs(queueLength="0"), ('"queueLength"', '"0"', "greater than 0")),
    (sqs(queueLength="many"), ('"queueLength"', '"many"', "whole number")),
    (sqs(activationQueueLength="1.5"), ('"activationQueueLength"', '"1.5"', "whole number")),
    (sqs(scaleOnInFlight="sometimes"), ('"scaleOnInFlight"', '"sometimes"', '"true" or "false"')),
    (sqs(scaleOnDelayed="2"), ('"scaleOnDelayed"', '"2"')),
    (sqs(identityOwner="me"), ('"identityOwner"', '"me"', '"pod"', '"operator"')),
    (sqs(queueURL="https://sqs.eu-west-1.amazonaws.com/jobs"), ('"queueURL"', "/<account-id>/<queue-name>")),
    (sqs(queueURL="https://sqs.eu-west-1.amazonaws.com/1/2/3"), ('"queueURL"', "/<account-id>/<queue-name>")),
    (sqs(queueURL="no spaces allowed"), ('"queueURL"', "neither a queue URL nor a queue name")),
    (sqs(queueURL="https://sqs.us-east-1.amazonaws.com/123456789012/jobs"), ('"awsRegion"', '"eu-west-1"', '"us-east-1"')),
    (sqs(awsEndpoint="localhost:4566"), ('"awsEndpoint"', "http(s) URL")),
    (sqs(awsAccessKeyID="AKID"), ("must be given together",)),
    (sqs(awsSecretAccessKeyFromEnv="s"), ("must be given together",)),
    (sqs(awsSessionTokenFromEnv="t"), ('"awsSessionTokenFromEnv" needs',)),
    (sqs(awsSecretAccessKey="MY_SECRET_VAR"), ('"awsSecretAccessKey"', "awsSecretAccessKeyFromEnv")),
    (sqs(awsSessionToken="TOKEN_VAR"), ('"awsSessionToken"', "awsSessionTokenFromEnv")),
    (sqs(awsExternalId="x"), ('"awsExternalId" needs "awsRoleArn"',)),
    (sqs(awsRoleArn="queue-reader"), ('"awsRoleArn"', '"queue-reader"', "role ARN")),
]  # fmt: skip


@pytest.mark.parametrize(("metadata", "expected"), GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_good_metadata(metadata: dict[str, str], expected: dict[str, Any]) -> None:
    trigger = TRIGGERS.parse(metadata)
    query = trigger.query
    assert isinstance(query, SqsQuery)
    for name, want in expected.items():
        got = {
            "metric": trigger.metric_name,
            "target": trigger.target,
            "activation": trigger.activation,
            "attributes": query.attributes,
            "queue_url": query.queue_url,
            "queue_name": query.queue_name,
        }.get(name, getattr(query.identity, name, None))
        assert got == want, name


@pytest.mark.parametrize(("metadata", "needles"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_metadata(metadata: dict[str, str], needles: tuple[str, ...]) -> None:
    with pytest.raises(MetadataError) as err:
        TRIGGERS.parse(metadata)
    for needle in needles:
        assert needle in err.value.message, (needle, err.value.message)


def test_plain_secret_is_not_echoed() -> None:
    with pytest.raises(MetadataError) as err:
        TRIGGERS.parse(sqs(awsSecretAccessKey="wJalrXUtnFEMI/K7MDENG"))
    assert "wJalrXUtnFEMI" not in err.value.message


IDENTITY = SqsIdentity("eu-west-1", "", None, None, None, "", None)


def _client_error(code: str, status: int = 400) -> bexc.ClientError:
    return bexc.ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetQueueAttributes",
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("AWS.SimpleQueueService.NonExistentQueue"), QueueNotFound),
        (_client_error("AccessDenied", 403), BrokerPermissionError),
        (_client_error("InvalidClientTokenId", 403), BrokerAuthError),
        (_client_error("ExpiredToken", 400), BrokerAuthError),
        (_client_error("RequestThrottled", 400), BrokerThrottled),
        (_client_error("ThrottlingException", 400), BrokerThrottled),
        (_client_error("InternalError", 500), BrokerError),
        (bexc.NoCredentialsError(), BrokerAuthError),
    ],
)
def test_aws_errors_map_to_distinct_statuses(error: Exception, kind: type[Exception]) -> None:
    translated = translate(error, IDENTITY, 'reading queue "jobs"')
    assert type(translated) is kind
    assert "SQS in eu-west-1" in translated.message


def test_access_denied_says_which_permissions_are_needed() -> None:
    message = translate(_client_error("AccessDenied", 403), IDENTITY, "x").message
    assert "sqs:GetQueueAttributes" in message
