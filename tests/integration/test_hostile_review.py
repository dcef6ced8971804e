"""The hostile review's findings (issue #18), each as it was reproduced, on loopback.

1. IPv4-mapped IPv6 past the metadata refusal: tests/integration/test_refused_networks.py
   (every form, every key) and the rows of tests/unit/test_guard.py.
2. Redirects followed by the management API and AWS clients.
3. ``--allow-aws-roles`` bypassed by a blank access key.
4. ``unsafeSsl`` added to a TLS credential set: the set's password to a MITM.
5. SQS memory growing with identities (one client each): here, the clients stay one;
   the RSS of 1,000 identities is in tests/integration/test_memory.py (slow).
6. INTERNAL on odd input: the inputs the review found, and the endpoint answers.

Each "elsewhere" is a loopback listener that records every connection; the tests
assert it was never dialed, or that it never received the secret.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from scaler.brokers.rabbitmq.metadata import parse_timeout
from scaler.errors import MetadataError
from scaler.logs import QUIET_LIBRARIES
from tests.brokers import LoopbackServer, MotoServer
from tests.certs import make_pki
from tests.conftest import ServerFactory, metrics_request
from tests.integration.test_security import credential_set, status


class Recorder(LoopbackServer):
    """Records connections and bytes; answers each HTTP request with ``reply``."""

    def __init__(self, reply: bytes = b"", tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.reply = reply
        self.tls = tls
        self.connections = 0
        self.received = bytearray()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            async with asyncio.timeout(5):
                while b"\r\n\r\n" not in self.received and (data := await reader.read(65536)):
                    self.received += data
                    if self.reply:
                        writer.write(self.reply)
                        await writer.drain()
                        break
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def redirect_to(port: int, path: str) -> bytes:
    return (
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d%s\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n" % (port, path.encode())
    )


@pytest.fixture
async def elsewhere() -> AsyncIterator[Recorder]:
    """Where a redirect points: it answers a count of 4242, which must never be read."""
    body = b'{"messages": 4242, "messages_ready": 4242}'
    server = Recorder(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (len(body), body)
    )
    await server.start()
    yield server
    await server.stop()


# -- 2. redirects ------------------------------------------------------------------------
async def test_2_the_management_api_redirect_is_an_error_not_followed(
    start_server: ServerFactory, elsewhere: Recorder
) -> None:
    redirector = Recorder(redirect_to(elsewhere.port, "/api/queues/%2F/q"))
    await redirector.start()
    try:
        host = f"http://u:pw@127.0.0.1:{redirector.port}/"
        async with start_server(allow_brokers=f"127.0.0.1:{redirector.port}") as s:
            code, details = await status(s.stub.GetMetrics(metrics_request(
                {"scalerType": "rabbitmq", "queueName": "q", "host": host})))  # fmt: skip
    finally:
        await redirector.stop()
    assert code == grpc.StatusCode.UNAVAILABLE, details
    assert "HTTP 302" in details
    assert "never follows" in details
    assert redirector.connections == 1
    assert elsewhere.connections == 0


@pytest.mark.parametrize("call", ["GetQueueAttributes", "AssumeRole"])
async def test_2_an_aws_endpoint_redirect_is_an_error_not_followed(
    start_server: ServerFactory, elsewhere: Recorder, call: str
) -> None:
    redirector = Recorder(redirect_to(elsewhere.port, "/"))
    await redirector.start()
    endpoint = f"http://127.0.0.1:{redirector.port}"
    metadata = {
        "scalerType": "aws-sqs-queue", "queueURL": "https://sqs.us-east-1.amazonaws.com/1/q",
        "awsRegion": "us-east-1", "awsEndpoint": endpoint,
        "awsAccessKeyIDFromEnv": "AKIDTENANT", "awsSecretAccessKeyFromEnv": "tenant-secret",
    }  # fmt: skip
    if call == "AssumeRole":
        metadata["awsRoleArn"] = "arn:aws:iam::123456789012:role/reader"
    try:
        async with start_server(
            allow_aws_endpoints=endpoint, allow_brokers=f"127.0.0.1:{redirector.port}"
        ) as s:
            code, details = await status(s.stub.GetMetrics(metrics_request(metadata)))
    finally:
        await redirector.stop()
    assert code == grpc.StatusCode.UNAVAILABLE, details
    assert "HTTP 302" in details
    assert "never follows" in details
    assert redirector.received.startswith(b"POST ")
    assert (b"AssumeRole" in redirector.received) is (call == "AssumeRole")
    assert elsewhere.connections == 0


# -- 3. the role allowlist ----------------------------------------------------------------
@pytest.mark.parametrize(
    "blank",
    [{"awsAccessKeyID": " "}, {"awsAccessKeyID": "\t"}, {"awsAccessKeyIDFromEnv": " \n"},
     {"awsAccessKeyID": " ", "awsSecretAccessKeyFromEnv": " "}],
)  # fmt: skip
async def test_3_a_blank_key_does_not_make_the_scalers_identity_assume_any_role(
    start_server: ServerFactory, moto: MotoServer, blank: dict[str, str]
) -> None:
    metadata = {
        "scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "us-east-1",
        "awsEndpoint": moto.endpoint,
        "awsRoleArn": "arn:aws:iam::999999999999:role/cluster-admin", **blank,
    }  # fmt: skip
    async with start_server(allow_aws_endpoints=moto.endpoint, allow_aws_roles="") as s:
        code, details = await status(s.stub.GetMetrics(metrics_request(metadata)))
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert "--allow-aws-roles" in details
    assert moto.count("AssumeRole") == 0


async def test_3_a_trigger_with_its_own_keys_still_assumes_its_role(
    start_server: ServerFactory, moto: MotoServer
) -> None:
    """The other side of the rule: real keys of the tenant's own sign the AssumeRole."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1",
                       aws_access_key_id="a", aws_secret_access_key="b")  # fmt: skip
    sqs.create_queue(QueueName="q")
    metadata = {
        "scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "us-east-1",
        "awsEndpoint": moto.endpoint, "awsRoleArn": "arn:aws:iam::123456789012:role/reader",
        "awsAccessKeyID": " AKIDTENANT ", "awsSecretAccessKeyFromEnv": "tenant-secret",
    }  # fmt: skip
    async with start_server(allow_aws_endpoints=moto.endpoint) as s:
        reply = await s.stub.GetMetrics(metrics_request(metadata))
    assert reply.metricValues[0].metricValue == 0
    assert moto.keys_used("AssumeRole") == ["AKIDTENANT"]


# -- 4. transport under a credential set --------------------------------------------------
@pytest.fixture
async def mitm(tmp_path: Path) -> AsyncIterator[Recorder]:
    """A TLS listener whose certificate no one trusts (its own CA), recording bytes."""
    pki = make_pki(tmp_path / "mitm")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server = Recorder(tls=context)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(
    ("scaler_type", "files", "extra"),
    [
        ("redis", {"enableTLS": "true"}, {"unsafeSsl": "true"}),
        ("redis", {"enableTLS": "true"}, {"unsafeSsl": " TRUE "}),
        ("redis", {"enableTLS": "true"}, {"enableTLS": "false"}),
        ("rabbitmq", {}, {"unsafeSsl": "1"}),
    ],
)
async def test_4_a_trigger_cannot_weaken_the_transport_of_a_sets_password(
    start_server: ServerFactory, tmp_path: Path, mitm: Recorder,
    scaler_type: str, files: dict[str, str], extra: dict[str, str],
) -> None:  # fmt: skip
    target = {"address": mitm.address} if scaler_type == "redis" else {
        "host": f"amqps://team:SET-PASSWORD@127.0.0.1:{mitm.port}/"}  # fmt: skip
    credential_set(tmp_path, "team-a", namespaces="team-a", password="SET-PASSWORD",
                   **target, **files)  # fmt: skip
    name = {"listName": "q"} if scaler_type == "redis" else {"queueName": "q"}
    metadata = {"scalerType": scaler_type, "credentialsRef": "team-a", **name, **extra}
    request = metrics_request(metadata)
    request.scaledObjectRef.namespace = "team-a"
    async with start_server(credentials_dir=str(tmp_path)) as s:
        code, details = await status(s.stub.GetMetrics(request))
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert "stricter, never weaker" in details
    assert mitm.connections == 0
    assert b"SET-PASSWORD" not in mitm.received


async def test_4_a_stricter_transport_is_allowed_and_verification_protects_the_password(
    start_server: ServerFactory, tmp_path: Path, mitm: Recorder
) -> None:
    """``unsafeSsl: false`` under a TLS set is allowed; the MITM's certificate fails
    verification, so it sees a handshake and never the password (its handler, which
    runs after a handshake, is never reached)."""
    credential_set(tmp_path, "team-a", namespaces="team-a", password="SET-PASSWORD",
                   address=mitm.address, enableTLS="true")  # fmt: skip
    metadata = {"scalerType": "redis", "credentialsRef": "team-a", "listName": "q",
                "unsafeSsl": "false"}  # fmt: skip
    request = metrics_request(metadata)
    request.scaledObjectRef.namespace = "team-a"
    async with start_server(credentials_dir=str(tmp_path), read_timeout=5) as s:
        code, details = await status(s.stub.GetMetrics(request))
    assert code == grpc.StatusCode.UNAVAILABLE, details
    assert "CERTIFICATE_VERIFY_FAILED" in details  # the handshake failed: nothing was sent
    assert b"SET-PASSWORD" not in mitm.received


# -- 5. SQS clients do not grow with identities --------------------------------------------
async def test_5_distinct_aws_identities_share_one_client(
    start_server: ServerFactory, moto: MotoServer
) -> None:
    """Before: one aiobotocore client (about 9 MiB) per identity, 1.8 GiB for 200."""
    import boto3

    boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1",
                 aws_access_key_id="a", aws_secret_access_key="b").create_queue(QueueName="q")  # fmt: skip
    async with start_server(allow_aws_endpoints=moto.endpoint) as s:
        for i in range(100):
            metadata = {
                "scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "us-east-1",
                "awsEndpoint": moto.endpoint, "awsAccessKeyID": f"AKID{i:04d}",
                "awsSecretAccessKeyFromEnv": f"secret-{i}",
            }  # fmt: skip
            reply = await s.stub.GetMetrics(metrics_request(metadata))
            assert reply.metricValues[0].metricValue == 0
        clients = s.sample("keda_queue_scaler_broker_clients")
    # Every identity signed its own calls (moto records the key), over one client.
    assert len(set(moto.keys_used("GetQueueAttributes"))) == 100
    assert clients == 1


# -- 6. INTERNAL on odd input --------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"queueURL": "http://[::1/1/q"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"queueURL": "http://127.0.0.1:port/1/q"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"awsRegion": ".."}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"awsRegion": "+5"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"awsRegion": "@"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"awsEndpoint": "http://127.0.0.1:1\n/x"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"awsEndpoint": "http://[::1:1"}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_6_odd_sqs_metadata_is_a_clear_error(
    start_server: ServerFactory, extra: dict[str, str], code: grpc.StatusCode
) -> None:
    metadata = {"scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "us-east-1",
                "awsAccessKeyID": "AKID", "awsSecretAccessKeyFromEnv": "s", **extra}  # fmt: skip
    async with start_server(allow_aws_endpoints="http://127.0.0.1:1") as s:
        got, details = await status(s.stub.GetMetrics(metrics_request(metadata)))
        spec = await s.stub.GetMetricSpec(metrics_request(metadata).scaledObjectRef)
    assert got == code, details
    assert spec.metricSpecs  # GetMetricSpec still answers (KEDA would hide its error)


@pytest.mark.parametrize("timeout", ["9" * 400, "10000000000000000000", "9223372036855"])
async def test_6_a_rabbitmq_timeout_past_a_go_duration_is_invalid_argument(
    start_server: ServerFactory, timeout: str
) -> None:
    metadata = {"scalerType": "rabbitmq", "queueName": "q", "host": "http://127.0.0.1:1/",
                "timeout": timeout}  # fmt: skip
    async with start_server() as s:
        code, details = await status(s.stub.GetMetrics(metrics_request(metadata)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert 'parameter "timeout"' in details


@pytest.mark.parametrize(
    ("text", "seconds"),
    # Go: time.ParseDuration first, then strconv.ParseInt milliseconds (KEDA typed config).
    [("+5", 0.005), ("1.s", 1.0), (".5s", 0.5), ("-0", 0.0), ("1h1m1.5s", 3661.5),
     ("9223372036854", 9223372036.854), ("2562047h47m16.854775807s", 9223372036.854775807)],
)  # fmt: skip
def test_6_rabbitmq_timeout_reads_as_go_does(text: str, seconds: float) -> None:
    assert parse_timeout(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-5s", "-1", "5 s", "1e3", "0x10", "1_000", "5S", "", "+", "."])
def test_6_rabbitmq_timeouts_go_refuses_are_refused(text: str) -> None:
    with pytest.raises(MetadataError, match='parameter "timeout"'):
        parse_timeout(text)


class OddEndpoint(LoopbackServer):
    """An AWS endpoint answering every request with ``status``, ``kind`` and ``body``."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: tuple[int, str, bytes] = (200, "text/plain", b"")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                await reader.readexactly(length)
            code, kind, body = self.answer
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (code, kind.encode(), len(body), body))  # fmt: skip
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def odd() -> AsyncIterator[OddEndpoint]:
    server = OddEndpoint()
    await server.start()
    yield server
    await server.stop()


BODY = b"BODY-MARKER-7c1d <not xml"
JSON = "application/x-amz-json-1.0"


@pytest.mark.parametrize(
    ("role", "answer", "needle"),
    [
        (False, (200, JSON, b"{}"), "without a QueueUrl"),  # GetQueueUrl answered {}
        (False, (200, JSON, b'{"QueueUrl": 5}'), "without a QueueUrl"),
        (False, (200, JSON, b'{"QueueUrl": null}'), "without a QueueUrl"),
        (True, (200, "text/xml", BODY), "not an SQS response"),  # STS: not XML
        (True, (200, "text/xml", b"<AssumeRoleResponse><AssumeRoleResult/></AssumeRoleResponse>"),
         "without usable temporary credentials"),
    ],
)  # fmt: skip
async def test_6_odd_endpoint_answers_are_errors_naming_the_cause_and_never_logged(
    start_server: ServerFactory, odd: OddEndpoint, caplog: pytest.LogCaptureFixture,
    role: bool, answer: tuple[int, str, bytes], needle: str,
) -> None:  # fmt: skip
    odd.answer = answer
    endpoint = f"http://127.0.0.1:{odd.port}"
    metadata = {"scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "us-east-1",
                "awsEndpoint": endpoint, "awsAccessKeyID": "AKID",
                "awsSecretAccessKeyFromEnv": "s"}  # fmt: skip
    if role:
        metadata["awsRoleArn"] = "arn:aws:iam::123456789012:role/reader"
    caplog.set_level(logging.DEBUG)  # every level of ours; the libraries as `serve` holds them
    for name in QUIET_LIBRARIES:
        caplog.set_level(logging.INFO, logger=name)
    async with start_server(allow_aws_endpoints=endpoint) as s:
        code, details = await status(s.stub.GetMetrics(metrics_request(metadata)))
    assert code == grpc.StatusCode.UNAVAILABLE, details
    assert needle in details
    assert b"BODY-MARKER" not in details.encode()
    assert "BODY-MARKER" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "metadata",
    [
        {"scalerType": "rabbitmq", "queueLength": "1000E303"},  # found by make fuzz
        {"scalerType": "rabbitmq", "queueName": "q", "host": "http://127.0.0.1:1/",
         "mode": "QueueLength", "value": "1e306"},
    ],
)  # fmt: skip
async def test_6_a_target_past_float64_milli_quantities_is_not_internal(
    start_server: ServerFactory, metadata: dict[str, str]
) -> None:
    """KEDA keeps 3 decimals of a target as a quantity; its digits past float64 read back
    as +Inf (Go's big.Float), where Python's float() of the same integer raised."""
    async with start_server() as s:
        spec = await s.stub.GetMetricSpec(metrics_request(metadata).scaledObjectRef)
        code, _ = await status(s.stub.GetMetrics(metrics_request(metadata)))
    assert spec.metricSpecs
    assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE)
