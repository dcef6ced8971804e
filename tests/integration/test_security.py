"""The security review's findings, as an attacker who can create a ScaledJob in their
own namespace would try them, against loopback peers only (never another address):

1. a credential set's password sent to the attacker's server, or used from another
   namespace;
2. the scaler as a port scanner and an HTTP client whose error bodies come back;
6. huge metadata values: unbounded memory, /metrics and messages.

Each "attacker's server" is a loopback listener that records every connection: the
tests assert it was never dialed.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from scaler.brokers.memory.client import MemoryAdapter
from scaler.brokers.rabbitmq.client import RabbitAdapter
from scaler.brokers.redis.client import RedisAdapter
from scaler.brokers.sqs.client import SqsAdapter
from tests.brokers import LoopbackServer, MotoServer, RabbitMQProcess, RedisProcess
from tests.conftest import REDIS_PASSWORD, ServerFactory, metrics_request, ref


class Listener(LoopbackServer):
    """Records connections and what they sent; answers HTTP requests with a 500 whose
    body holds a marker, and nothing else."""

    BODY = b"<html>stack trace with BODY-MARKER-1f3a</html>"

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0
        self.received = bytearray()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            async with asyncio.timeout(5):
                data = await reader.read(65536)
            self.received += data
            if data.startswith(b"GET "):
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(self.BODY), self.BODY)
                )
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    server = Listener()
    await server.start()
    yield server
    await server.stop()


class Counting:
    """An adapter wrapper counting reads: a refused trigger must never reach one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0

    async def read(self, query: Any) -> Any:
        self.reads += 1
        return await self.inner.read(query)

    async def aclose(self) -> None:
        await self.inner.aclose()


def credential_set(root: Path, name: str, **files: str) -> None:
    folder = root / name
    folder.mkdir()
    for key, value in files.items():
        (folder / key).write_text(value)


@pytest.fixture
def sets(tmp_path: Path, redis_password_server: RedisProcess, rabbitmq: RabbitMQProcess,
         moto: MotoServer) -> Path:  # fmt: skip
    credential_set(
        tmp_path, "team-a-redis", namespaces="team-a",
        address=redis_password_server.address, password=REDIS_PASSWORD,
    )  # fmt: skip
    credential_set(tmp_path, "team-a-rabbit", namespaces="team-a", host=rabbitmq.amqp_url())
    credential_set(
        tmp_path, "team-a-aws", namespaces="team-a", awsEndpoint=moto.endpoint,
        awsAccessKeyID="AKIDTEAMA", awsSecretAccessKey="team-a-aws-secret",
    )  # fmt: skip
    return tmp_path


async def status(call: Any) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


async def test_row1_a_credential_set_never_goes_to_the_attackers_server(
    start_server: ServerFactory, sets: Path, listener: Listener
) -> None:
    attacker = f"127.0.0.1:{listener.port}"
    attacks = [
        {"scalerType": "redis", "listName": "jobs", "credentialsRef": "team-a-redis",
         "address": attacker},
        {"scalerType": "rabbitmq", "queueName": "q", "credentialsRef": "team-a-rabbit",
         "host": f"amqp://{attacker}/"},
        {"scalerType": "aws-sqs-queue", "queueURL": "jobs", "awsRegion": "us-east-1",
         "credentialsRef": "team-a-aws", "awsEndpoint": f"http://{attacker}"},
    ]  # fmt: skip
    async with start_server(credentials_dir=str(sets)) as s:
        for metadata in attacks:
            for namespace in ("team-a", "mallory"):
                code, details = await status(
                    s.stub.GetMetrics(metrics_request_in(metadata, namespace))
                )
                assert code == grpc.StatusCode.PERMISSION_DENIED, (metadata, details)
                assert metadata["credentialsRef"] in details
    assert listener.connections == 0


async def test_row1_another_namespace_cannot_read_with_a_teams_set(
    start_server: ServerFactory, sets: Path, redis_password_server: RedisProcess
) -> None:
    redis_password_server.client().delete("jobs")
    redis_password_server.client().rpush("jobs", 1, 2)
    m = {"scalerType": "redis", "listName": "jobs", "credentialsRef": "team-a-redis"}
    async with start_server(credentials_dir=str(sets)) as s:
        reply = await s.stub.GetMetrics(metrics_request_in(m, "team-a"))
        assert reply.metricValues[0].metricValue == 2
        code, details = await status(s.stub.GetMetrics(metrics_request_in(m, "mallory")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert 'namespace "mallory" may not use credential set "team-a-redis"' in details


def metrics_request_in(metadata: dict[str, str], namespace: str) -> Any:
    request = metrics_request(metadata)
    request.scaledObjectRef.namespace = namespace
    return request


async def test_row2_a_broker_off_the_allowlist_is_refused_without_dialing(
    start_server: ServerFactory, listener: Listener, redis_db: RedisProcess
) -> None:
    redis = Counting(RedisAdapter(timeout=2))
    rabbit = Counting(RabbitAdapter(timeout=2))
    allowed = f"127.0.0.1:{redis_db.address.rsplit(':', 1)[1]}"
    closed_port = listener.port  # open (the listener) and, below, a closed one
    async with start_server(
        adapters={"redis": redis, "rabbitmq": rabbit}, allow_brokers=allowed
    ) as s:
        ok = await s.stub.GetMetrics(
            metrics_request({"scalerType": "redis", "listName": "jobs", "address": allowed})
        )
        assert ok.metricValues[0].metricValue >= 0
        answers = []
        for port in (listener.port, closed_port + 1):
            for metadata in (
                {"scalerType": "redis", "listName": "jobs", "address": f"127.0.0.1:{port}"},
                {"scalerType": "rabbitmq", "queueName": "q",
                 "host": f"http://127.0.0.1:{port}/admin/x"},
            ):  # fmt: skip
                answers.append(await status(s.stub.GetMetrics(metrics_request(metadata))))
    assert {code for code, _ in answers} == {grpc.StatusCode.PERMISSION_DENIED}
    # An open and a closed port get the same answer: no port scanning through us.
    shapes = {details.replace(str(listener.port), "P").replace(str(closed_port + 1), "P")
              for _, details in answers}  # fmt: skip
    assert len(shapes) == 2  # one per broker type, whatever the port
    assert all("--allow-brokers" in d for d in shapes)
    assert listener.connections == 0
    assert (redis.reads, rabbit.reads) == (1, 0)


@pytest.mark.parametrize("address", ["169.254.169.254:80", "[fd00:ec2::254]:80", "[fe80::1]:6379"])
async def test_row2_metadata_addresses_are_refused_whatever_the_setting(
    start_server: ServerFactory, address: str
) -> None:
    """Without --allow-brokers, and never dialed: the policy answers before any read."""
    redis = Counting(RedisAdapter(timeout=2))
    async with start_server(adapters={"redis": redis}) as s:
        code, details = await status(s.stub.GetMetrics(metrics_request(
            {"scalerType": "redis", "listName": "jobs", "address": address})))  # fmt: skip
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "link-local or cloud metadata address" in details
    assert redis.reads == 0


async def test_row2_an_http_error_body_never_comes_back(
    start_server: ServerFactory, listener: Listener
) -> None:
    host = f"http://127.0.0.1:{listener.port}/admin/vh"
    async with start_server(adapters={"rabbitmq": RabbitAdapter(timeout=2)}) as s:
        code, details = await status(s.stub.GetMetrics(metrics_request(
            {"scalerType": "rabbitmq", "queueName": "q", "host": host})))  # fmt: skip
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 500 Internal Server Error" in details
    assert "BODY-MARKER" not in details


async def test_row2_aws_endpoints_and_roles_come_from_the_operator(
    start_server: ServerFactory, listener: Listener, moto: MotoServer
) -> None:
    sqs = Counting(SqsAdapter(timeout=2))
    base = {"scalerType": "aws-sqs-queue", "queueURL": "jobs", "awsRegion": "us-east-1"}
    async with start_server(adapters={"sqs": sqs}, allow_aws_endpoints=moto.endpoint) as s:
        # The scaler's own identity (no keys in the trigger) to the attacker's endpoint.
        code, details = await status(s.stub.GetMetrics(metrics_request(
            {**base, "awsEndpoint": f"http://127.0.0.1:{listener.port}"})))  # fmt: skip
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "--allow-aws-endpoints" in details
        code, details = await status(s.stub.GetMetrics(metrics_request(
            {**base, "awsEndpoint": moto.endpoint,
             "awsRoleArn": "arn:aws:iam::123456789012:role/someone-elses"})))  # fmt: skip
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "--allow-aws-roles" in details
    assert listener.connections == 0
    assert sqs.reads == 0


async def test_row6_huge_values_are_invalid_argument_and_bounded_everywhere(
    start_server: ServerFactory,
) -> None:
    memory = MemoryAdapter()
    huge = "q" * 2**20
    async with start_server(adapters={"memory": memory}) as s:
        m = {"scalerType": "memory", "queueName": huge}
        code, details = await status(s.stub.GetMetrics(metrics_request(m)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert 'parameter "queueName" value is 1048576 characters long' in details
        assert len(details) < 1024
        (spec,) = (await s.stub.GetMetricSpec(ref(m))).metricSpecs
        assert spec.metricName == "memory-invalid-metadata"
        # The longest names accepted still give bounded series and messages.
        for i in range(100):
            name = f"{i:03d}" + "n" * 8000
            memory.put(name, 1)
            await s.stub.GetMetrics(metrics_request({"scalerType": "memory", "queueName": name}))
            code, details = await status(s.stub.GetMetrics(
                metrics_request({"scalerType": "memory", "queueName": name}, "memory-other")))  # fmt: skip
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert len(details) <= 1024
        url = f"http://127.0.0.1:{s.server.metrics_port}/metrics"
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert len(page) < 200_000, len(page)


async def test_row3_distinct_passwords_stay_within_the_client_budget(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    """3,000 distinct passwords held 3,030 connections before. A Redis without a
    password accepts any, so every one of these reads succeeds on its own client."""
    admin = redis_db.client()

    def ours() -> int:
        return sum(1 for c in admin.client_list() if c.get("name") == "keda-queue-scaler")

    async with start_server(max_broker_clients=40) as s:
        for i in range(300):
            m = {"scalerType": "redis", "listName": "jobs", "address": redis_db.address,
                 "passwordFromEnv": f"password-{i}"}  # fmt: skip
            await s.stub.GetMetrics(metrics_request(m))
        assert s.sample("keda_queue_scaler_broker_clients") <= 40
        assert s.sample("keda_queue_scaler_broker_client_evictions_total") >= 260
        async with asyncio.timeout(20):  # evicted clients' sockets close shortly after
            while ours() > 40:
                await asyncio.sleep(0.05)
    async with asyncio.timeout(20):
        while ours() > 0:
            await asyncio.sleep(0.05)


async def test_row6_a_slow_metrics_scrape_does_not_hold_up_grpc(
    start_server: ServerFactory,
) -> None:
    """The page is rendered off the event loop: while a collector is stuck mid-render
    (until a gRPC answer arrives), gRPC still answers."""
    import threading

    from prometheus_client.core import GaugeMetricFamily

    answered = threading.Event()
    rendering = threading.Event()

    class Slow:
        def collect(self) -> Any:
            rendering.set()
            assert answered.wait(30), "gRPC did not answer during the scrape"
            yield GaugeMetricFamily("slow_collector", "waits for a gRPC answer", value=1)

    memory = MemoryAdapter()
    memory.put("jobs", 2)
    async with start_server(adapters={"memory": memory}) as s:
        s.server.registry.register(Slow())
        url = f"http://127.0.0.1:{s.server.metrics_port}/metrics"
        scrape = asyncio.ensure_future(
            asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=60).read())
        )
        await asyncio.to_thread(rendering.wait, 30)
        reply = await s.stub.GetMetrics(
            metrics_request({"scalerType": "memory", "queueName": "jobs"})
        )
        answered.set()
        page = await scrape
    assert reply.metricValues[0].metricValue == 2
    assert b"slow_collector 1.0" in page
