"""The SQS adapter and service against a real HTTP SQS API: moto in server mode."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from scaler.brokers.memory.client import MemoryAdapter
from scaler.brokers.sqs.client import SqsAdapter
from scaler.errors import BrokerTimeout, BrokerUnavailable, QueueNotFound, UnsupportedState
from scaler.registry import Triggers
from tests.brokers import HangingServer, MotoServer, free_port
from tests.conftest import Clock, ServerFactory, evaluate, metrics_request, ref

ACCOUNT = "123456789012"


@pytest.fixture
async def triggers() -> AsyncIterator[Triggers]:
    t = Triggers({"sqs": SqsAdapter(timeout=2)})
    yield t
    await t.aclose()


async def value(triggers: Triggers, metadata: dict[str, str]) -> float:
    return (await evaluate(triggers, metadata))[0]


def meta(moto: MotoServer, queue: str, **extra: str) -> dict[str, str]:
    return {
        "scalerType": "aws-sqs-queue",
        "queueURL": queue,
        "awsRegion": "us-east-1",
        "awsEndpoint": moto.endpoint,
        "awsAccessKeyIDFromEnv": "AKIDSTATIC",
        "awsSecretAccessKeyFromEnv": "static-secret",
        **extra,
    }


def fill(moto: MotoServer, name: str, *, visible: int, in_flight: int, delayed: int) -> str:
    """A queue with exactly these counts; returns its URL."""
    sqs: Any = moto.sqs()
    fifo = name.endswith(".fifo")
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    group = {"MessageGroupId": "g"} if fifo else {}
    for i in range(visible + in_flight):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", **group)
    if in_flight:
        # FIFO hands out one message group at a time: give each in-flight message its own.
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=in_flight, VisibilityTimeout=600
        )
        assert len(got.get("Messages", [])) == in_flight
    if delayed:
        if fifo:  # FIFO queues delay per queue, not per message
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "600"})
            for i in range(delayed):
                sqs.send_message(QueueUrl=url, MessageBody=f"d{i}", MessageGroupId="d")
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0"})
        else:
            for i in range(delayed):
                sqs.send_message(QueueUrl=url, MessageBody=f"d{i}", DelaySeconds=600)
    return str(url)


@pytest.mark.parametrize("queue", ["work", "work.fifo"])
@pytest.mark.parametrize(
    ("in_flight", "delayed", "expected"),
    [
        ("true", "false", 3 + 2),
        ("false", "false", 3),
        ("true", "true", 3 + 2 + 4),
        ("false", "true", 3 + 4),
    ],
)
async def test_counts_by_flag_combination(
    triggers: Triggers, moto: MotoServer, queue: str, in_flight: str, delayed: str, expected: int
) -> None:
    fill(moto, queue, visible=3, in_flight=2, delayed=4)
    got = await value(
        triggers, meta(moto, queue, scaleOnInFlight=in_flight, scaleOnDelayed=delayed)
    )
    assert got == expected


async def test_defaults_count_visible_and_in_flight(triggers: Triggers, moto: MotoServer) -> None:
    fill(moto, "work", visible=3, in_flight=2, delayed=4)
    assert await value(triggers, meta(moto, "work")) == 5
    # exactly the attributes needed, in one call per read
    assert moto.count("GetQueueAttributes") == 1


async def test_full_url_and_bare_name_agree_and_name_is_resolved_once(
    triggers: Triggers, moto: MotoServer
) -> None:
    url = fill(moto, "work", visible=2, in_flight=0, delayed=0)
    assert url == f"{moto.endpoint}/{ACCOUNT}/work"
    assert await value(triggers, meta(moto, url)) == 2
    assert moto.count("GetQueueUrl") == 0
    for _ in range(3):
        assert await value(triggers, meta(moto, "work")) == 2
    assert moto.count("GetQueueUrl") == 1  # remembered after the first read


async def test_missing_queue_is_not_found(triggers: Triggers, moto: MotoServer) -> None:
    with pytest.raises(QueueNotFound, match="does not exist"):
        await value(triggers, meta(moto, "nope"))
    with pytest.raises(QueueNotFound, match="does not exist"):
        await value(triggers, meta(moto, f"{moto.endpoint}/{ACCOUNT}/nope"))


async def test_bad_endpoint_is_unavailable(triggers: Triggers, moto: MotoServer) -> None:
    metadata = meta(moto, "work", awsEndpoint=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BrokerUnavailable, match=r"cannot reach http://127\.0\.0\.1"):
        await value(triggers, metadata)


async def test_hanging_endpoint_times_out_within_the_read_timeout(
    moto: MotoServer, hanging_server: HangingServer
) -> None:
    triggers = Triggers({"sqs": SqsAdapter(timeout=1.0)})
    metadata = meta(moto, "work", awsEndpoint=f"http://127.0.0.1:{hanging_server.port}")
    with pytest.raises(BrokerTimeout, match="did not answer in time"):
        await value(triggers, metadata)  # our deadline ended it, not the client's retries
    await triggers.aclose()


async def test_hanging_endpoint_does_not_stall_other_triggers(
    start_server: ServerFactory, moto: MotoServer, hanging_server: HangingServer
) -> None:
    fill(moto, "work", visible=4, in_flight=0, delayed=0)
    memory = MemoryAdapter()
    memory.put("jobs", 2)
    # The hanging read ends at the read timeout; the healthy ones must answer first,
    # which a loaded machine can delay by a few seconds.
    adapters = {"sqs": SqsAdapter(timeout=10.0), "memory": memory}
    hanging = meta(moto, "work", awsEndpoint=f"http://127.0.0.1:{hanging_server.port}")
    healthy = meta(moto, "work")
    endpoints = f"{moto.endpoint},{hanging['awsEndpoint']}"
    async with start_server(
        adapters=adapters, read_timeout=10.0, allow_aws_endpoints=endpoints
    ) as s:
        stuck = asyncio.ensure_future(s.stub.GetMetrics(metrics_request(hanging)))
        # the stuck read is under way once the hanging endpoint has its connection
        assert await asyncio.to_thread(hanging_server.connected.wait, 30)
        sqs_reply = await s.stub.GetMetrics(metrics_request(healthy))
        mem_reply = await s.stub.IsActive(ref({"scalerType": "memory", "queueName": "jobs"}))
        assert not stuck.done()  # both answered while the hanging read still waits
        assert sqs_reply.metricValues[0].metricValue == 4
        assert mem_reply.result is True
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stuck
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_hundred_callers_one_request_per_ttl_window(
    start_server: ServerFactory, moto: MotoServer
) -> None:
    fill(moto, "work", visible=7, in_flight=0, delayed=0)
    m = meta(moto, "work")
    clock = Clock()
    async with start_server(cache_ttl=1.0, allow_aws_endpoints=moto.endpoint, clock=clock) as s:
        calls = [s.stub.GetMetrics(metrics_request(m)) for _ in range(50)]
        calls += [s.stub.IsActive(ref(m)) for _ in range(50)]
        replies = await asyncio.gather(*calls)
        assert {r.metricValues[0].metricValue for r in replies[:50]} == {7}
        assert moto.count("GetQueueAttributes") == 1
        clock.now += 1.05
        await asyncio.gather(*(s.stub.IsActive(ref(m)) for _ in range(100)))
        assert moto.count("GetQueueAttributes") == 2


async def test_static_keys_from_env_metadata_sign_the_requests(
    triggers: Triggers, moto: MotoServer
) -> None:
    fill(moto, "work", visible=1, in_flight=0, delayed=0)
    await value(triggers, meta(moto, "work", awsAccessKeyIDFromEnv="AKIDFROMENV"))
    assert moto.keys_used("GetQueueAttributes") == ["AKIDFROMENV"]


async def test_default_chain_uses_the_scalers_environment(
    triggers: Triggers, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(moto, "work", visible=1, in_flight=0, delayed=0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPODENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pod-secret")
    metadata = meta(moto, "work")
    del metadata["awsAccessKeyIDFromEnv"], metadata["awsSecretAccessKeyFromEnv"]
    assert await value(triggers, metadata) == 1
    assert moto.keys_used("GetQueueAttributes") == ["AKIDPODENV"]


async def test_assumed_role_credentials_are_cached_and_refreshed_before_expiry(
    moto: MotoServer,
) -> None:
    fill(moto, "work", visible=2, in_flight=0, delayed=0)
    now = datetime.datetime.now(datetime.UTC)
    clock = {"now": now}
    adapter = SqsAdapter(timeout=2, now=lambda: clock["now"], role_seconds=3600)
    triggers = Triggers({"sqs": adapter})
    role = meta(
        moto,
        "work",
        awsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/queue-reader",
        awsExternalId="ext-123",
    )
    try:
        for _ in range(3):
            assert await value(triggers, role) == 2
        assert adapter.assume_role_calls == 1  # cached
        # STS was called with the static base keys; SQS with the role's temporary keys.
        assert moto.keys_used("AssumeRole") == ["AKIDSTATIC"]
        first_key = moto.keys_used("GetQueueAttributes")[0]
        assert first_key not in ("", "AKIDSTATIC")
        # 50 minutes later the credentials are inside botocore's refresh window (15 min).
        clock["now"] = now + datetime.timedelta(minutes=50)
        assert await value(triggers, role) == 2
        assert adapter.assume_role_calls == 2
        assert moto.keys_used("GetQueueAttributes")[-1] != first_key
    finally:
        await triggers.aclose()


async def test_errors_never_contain_the_secret(triggers: Triggers, moto: MotoServer) -> None:
    secret = "very-secret-value-123"
    with pytest.raises(QueueNotFound) as err:
        await value(triggers, meta(moto, "nope", awsSecretAccessKeyFromEnv=secret))
    assert secret not in str(err.value)


class _OddSqs:
    """A loopback HTTP endpoint that answers every SQS call with one fixed reply: the
    answers KEDA treats as errors, which moto never gives."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        import http.server
        import threading

        reply = (status, body, content_type)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code, payload, kind = reply
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _OddSqs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


ODD_URL = f"http://127.0.0.1:1/{ACCOUNT}/work"  # the endpoint decides where calls go


@pytest.mark.parametrize(
    ("status", "body", "content_type", "needle"),
    [
        (200, b'{"Attributes": {"ApproximateNumberOfMessages": "lots",'
              b' "ApproximateNumberOfMessagesNotVisible": "1"}}',
         "application/x-amz-json-1.0", "not an integer"),
        (200, b'{"Attributes": {"ApproximateNumberOfMessages": "3"}}',
         "application/x-amz-json-1.0", "did not return ApproximateNumberOfMessagesNotVisible"),
        (500, b"<html>internal-stack-trace-SECRET</html>", "text/html", "failed while"),
        (200, b"<html>not json SECRET</html>", "text/html", "did not return"),
    ],
)  # fmt: skip
async def test_answers_keda_treats_as_errors_have_a_status_with_the_cause(
    start_server: ServerFactory, status: int, body: bytes, content_type: str, needle: str
) -> None:
    with _OddSqs(status, body, content_type) as odd:
        metadata = {
            "scalerType": "aws-sqs-queue", "queueURL": ODD_URL, "awsRegion": "us-east-1",
            "awsEndpoint": odd.endpoint, "awsAccessKeyIDFromEnv": "AKID",
            "awsSecretAccessKeyFromEnv": "secret",
        }  # fmt: skip
        async with start_server(read_timeout=5, allow_aws_endpoints=odd.endpoint) as s:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.stub.GetMetrics(metrics_request(metadata))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    details = err.value.details() or ""
    assert needle in details
    assert "SECRET" not in details  # a body is the endpoint's, never echoed


async def test_age_is_cloudwatchs_newest_age_of_oldest_message(moto: MotoServer) -> None:
    """measure: age on SQS reads CloudWatch's ApproximateAgeOfOldestMessage (moto's
    CloudWatch, holding datapoints the test puts there as SQS would, a minute apart):
    the newest datapoint in the window is the value, as it is: never aged further."""
    now = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
    adapter = SqsAdapter(timeout=5, now=lambda: now)
    triggers = Triggers({"sqs": adapter})
    try:
        url = fill(moto, "aged", visible=3, in_flight=0, delayed=0)
        empty = fill(moto, "aged-empty", visible=0, in_flight=0, delayed=0)
        silent = fill(moto, "aged-silent", visible=2, in_flight=0, delayed=0)
        watch: Any = moto.client("cloudwatch")
        for minutes, seconds in ((3, 100.0), (1, 220.0), (2, 160.0), (20, 999.0)):
            watch.put_metric_data(Namespace="AWS/SQS", MetricData=[{
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "aged"}],
                "Timestamp": now - datetime.timedelta(minutes=minutes),
                "Value": seconds, "Unit": "Seconds",
            }])  # fmt: skip
        md = meta(moto, url, measure="age", targetAge="60", activationAge="200")
        # the newest datapoint in the last 15 minutes (the one 20 minutes old is out)
        assert await evaluate(triggers, md, now=0) == (220.0, True)
        trigger = triggers.parse(md)
        sample = await adapter.read(trigger.query)
        assert (sample.length, sample.age) == (3.0, 220.0)
        assert trigger.metric_name == "aws-sqs-aged-age"
        # an empty queue with no datapoints: nothing waits
        assert await evaluate(triggers, {**md, "queueURL": empty}) == (0.0, False)
        # messages waiting and no datapoint: refused, never a made-up 0
        with pytest.raises(UnsupportedState, match="no ApproximateAgeOfOldestMessage"):
            await evaluate(triggers, {**md, "queueURL": silent})
    finally:
        await triggers.aclose()
