"""Metadata fuzzing through real gRPC: every scalerType's keys with hostile values.

No call may end in INTERNAL or UNKNOWN, none may hang past the read timeout, and
every refusal (INVALID_ARGUMENT, PERMISSION_DENIED) must name a key or the address it
refused. The scaler runs in its own thread and event loop, called through a blocking
channel, so hypothesis drives plain functions.

Only loopback is ever dialed: the server's broker policy allows 127.0.0.1 and ::1
alone, and its resolver refuses every name without asking DNS.

Values follow grammars, not only random text: URLs (schemes, user info, bracketed and
unbalanced hosts, refused addresses, ports past 65535, control characters), AWS
regions, numbers past int64 and float64, Go durations. A second test fuzzes what the
other side says: a loopback endpoint answers SQS, STS and the RabbitMQ management API
with bent valid answers, any JSON, broken XML, bytes, redirects and every status, and
no answer may end in INTERNAL or come back quoted.

About a minute and a half in CI: 5 x ``KQS_FUZZ_EXAMPLES`` metadata examples (default
800), three calls each, and ``KQS_FUZZ_EXAMPLES / 4`` endpoint answers, five reads
each; set it higher for a longer run (``make fuzz EXAMPLES=20000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.guard import BrokerPolicy
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.registry import KINDS
from scaler.server import ScalerServer
from tests.conftest import test_settings

READ_TIMEOUT = 2.0
EXAMPLES = int(os.environ.get("KQS_FUZZ_EXAMPLES", "800"))

INT64 = 2**63
NASTY = [
    "", " ", "0", "-0", "1", "-1", " 5 ", "5\x00", "\x00", "0x10", "1_000", "1e3", "1E400",
    "1" + "0" * 400, str(INT64 - 1), str(INT64), str(-INT64), str(-INT64 - 1),
    "9" * 30, "NaN", "nan", "Infinity", "-Inf", "1.5", ".5", "5.", "+5",
    "\u0661\u0662\u0663", "\uff15", "\u00b2",  # Arabic-Indic 123, fullwidth 5, superscript 2 "true", "TRUE", "t", "yes", "false", "F", "null", "[]", "{}",
    "x" * 8192, "x" * 8193, "é" * 100, "\udcff".encode("utf-8", "surrogatepass").decode(
        "utf-8", "replace"
    ),
    "127.0.0.1:1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "[::1]:1", "[::1]",
    "127.0.0.1", "127.0.0.1:1,127.0.0.1:2", "host:1", "169.254.169.254:80",
    "amqp://u:p/w@127.0.0.1:1/", "amqp://u:p#w@127.0.0.1:1/", "amqp://u:p@127.0.0.1:99999/",
    "amqp://@127.0.0.1:1/%2F", "http://u:p@127.0.0.1:1/api", "https://127.0.0.1:1/a/b/c",
    "http://127.0.0.1:0", "redis://127.0.0.1:1", "ftp://127.0.0.1:1", "http://[::1]:1/",
    "http://%zz@127.0.0.1:1/", "amqp://127.0.0.1:1/vh@st", "arn:aws:iam::1:role/x", "arn:",
    "https://sqs.us-east-1.amazonaws.com/123456789012/q", "https://127.0.0.1:1/1/q",
    "us-east-1", "cn-north-1", "QueueLength", "MessageRate", "sum", "avg", "max", "5s", "-5s",
    ".*", "(", "[a-", "\\", "a" * 81, "q.fifo",
]  # fmt: skip
# -- grammar: the shapes a parser must survive, not just random text --------------------
CONTROL = st.sampled_from(["\n", "\r", "\t", "\x00", "\x7f", " ", "\u2028", "\u200b"])
HOSTS = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "[::1",
            "::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:169.254.169.254]",
            "169.254.169.254",
            "0x7f000001",
            "2130706433",
            "[fe80::1%25lo]",
            "[",
            "]",
            "",
            "[]",
            "a..b",
            "-a",
            "a" * 300,
            "xn--",
            "é.example",
            "[v1.x]",
        ]
    ),
    st.from_regex(r"[a-z0-9.\-\[\]:%@]{1,30}", fullmatch=True),
)
PORTS = st.one_of(
    st.sampled_from(
        ["", ":", ":0", ":1", ":65535", ":65536", ":-1", ":abc", ":1:2", ":" + "9" * 30]
    ),
    st.integers(-5, 70000).map(lambda n: f":{n}"),
)
USERINFO = st.one_of(
    st.just(""),
    st.from_regex(r"[a-z%:/@#?]{0,12}", fullmatch=True).map(lambda u: u + "@"),
)
URLS = st.builds(
    lambda scheme, user, host, port, path, tail, ctl: (
        f"{scheme}{user}{host}{port}{path}{tail}{ctl}"
    ),
    st.sampled_from(
        [
            "http://",
            "https://",
            "amqp://",
            "amqps://",
            "redis://",
            "ftp://",
            "",
            "//",
            "HTTP://",
            "http:/",
            "http:///",
        ]
    ),
    USERINFO,
    HOSTS,
    PORTS,
    st.sampled_from(["", "/", "/1/q", "/123456789012/q", "/a/b/c", "/%2F", "/vh@st", "/%zz"]),
    st.sampled_from(["", "?x=1", "#f", "?", "#"]),
    st.one_of(st.just(""), CONTROL),
)
REGIONS = st.one_of(
    st.sampled_from(
        [
            "us-east-1",
            "cn-north-1",
            "..",
            "+5",
            "@",
            "-",
            "a-",
            "123",
            "US-EAST-1",
            "us_east_1",
            "a" * 64,
            "é",
        ]
    ),
    st.from_regex(r"[a-z0-9\-.+@_]{0,20}", fullmatch=True),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(
        lambda sign, digits, frac, exp: f"{sign}{digits}{frac}{exp}",
        st.sampled_from(["", "-", "+"]),
        st.from_regex(r"[0-9]{1,25}", fullmatch=True),
        st.sampled_from(["", ".", ".5", ".0000001"]),
        st.sampled_from(["", "e5", "E-5", "e400", "e-400", "e"]),
    ),
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(-(2**66), 2**66),
        st.sampled_from(["ms", "s", "m", "h", "ns", "us", "µs", "d", ""]),
    ),
)
#: queueFormat's own vocabulary: formats, states, Celery's steps and separators,
#: hash-tagged prefixes, so fuzzed triggers reach each format's rules and plan.
FORMAT_WORDS = st.sampled_from(
    ["list", "celery", "rq", "arq", "dramatiq", "huey", "bullmq", "sidekiq", "CELERY",
     "ready", "scheduled,active", "paused", "ready,,ready", "0,3,6,9", "9,0", "0,1000",
     "\x06\x16", "{bull}", "{", "}{", "a{b}c", "-", "rq:queue:default",
     "ready,active,expired", "expired", "active,ready", "{jobs}"]
)  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(NASTY),
    FORMAT_WORDS,
    st.text(max_size=40),
    NUMBERS,
    URLS,
    REGIONS,
)


def keys_of(scaler_type: str) -> list[str]:
    specs = KINDS[scaler_type].metadata.keys()
    names = {name for spec in specs for name in spec.names()}
    return sorted(names | {"credentialsRef", "unknownKey", "scalerAddress"})


#: A trigger that parses and reaches its broker (a closed loopback port), so that
#: fuzzed keys laid over it also exercise the paths past parsing.
BASES = {
    "redis": {"address": "127.0.0.1:1", "listName": "q"},
    "redis-streams": {"address": "127.0.0.1:1", "stream": "s"},
    "redis-cluster": {"addresses": "127.0.0.1:1,127.0.0.1:2", "listName": "q"},
    "redis-sentinel": {"addresses": "127.0.0.1:1", "sentinelMaster": "m", "listName": "q"},
    "aws-sqs-queue": {"queueURL": "q", "awsRegion": "us-east-1"},
    "rabbitmq": {"host": "amqp://u:p@127.0.0.1:1/", "queueName": "q"},
}


def metadata_for(scaler_type: str) -> st.SearchStrategy[dict[str, str]]:
    keys = st.sampled_from(keys_of(scaler_type))
    base = BASES.get(scaler_type, BASES.get(scaler_type.split("-")[0], {}))
    bases = [base]
    if "queueFormat" in keys_of(scaler_type):  # a framework's queue, on the same server
        framework = {k: v for k, v in base.items() if k != "listName"}
        bases += [{**framework, "queueFormat": f, "queueName": "q"}
                  for f in ("celery", "rq", "arq", "dramatiq", "huey", "bullmq", "sidekiq")]  # fmt: skip
    return st.one_of(
        st.dictionaries(keys, VALUES, max_size=8),
        st.tuples(st.sampled_from(bases), st.dictionaries(keys, VALUES, max_size=3)).map(
            lambda pair: {**pair[0], **pair[1]}
        ),
    ).map(lambda extra: {**extra, "scalerType": scaler_type})


METADATA = st.one_of(
    *(metadata_for(t) for t in KINDS if t != "memory"),
    st.dictionaries(st.text(max_size=20), VALUES, max_size=6),  # no or any scalerType
    st.just({"scalerType": "x" * 10_000}),
    st.just({f"k{i}": "v" for i in range(100)}),
)


async def _refuse_names(host: str, port: int) -> list[Any]:
    raise OSError("names are not resolved in the fuzz test")


class Background:
    """A ScalerServer in its own thread and event loop: by default the fuzz's, which
    dials 127.0.0.1 and ::1 only and resolves no name."""

    def __init__(self, policy: BrokerPolicy | None = None, **settings: Any) -> None:
        self.policy = policy or BrokerPolicy(("127.0.0.1", "[::1]"), resolve=_refuse_names)
        self.settings = {"read_timeout": READ_TIMEOUT, "metrics_port": -1, **settings}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: ScalerServer | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:  # a loop left open leaks its self-pipe sockets into later tests
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _start(self) -> None:
        self.server = ScalerServer(test_settings(**self.settings), policy=self.policy)
        await self.server.start()

    def stop(self) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.stop(grace=1), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@contextlib.contextmanager
def serving(background: Background) -> Iterator[pb_grpc.ExternalScalerStub]:
    """Start ``background``, and a blocking stub to it; stop both after."""
    background.thread.start()
    assert background.ready.wait(30)
    assert background.server is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{background.server.port}")
    try:
        yield pb_grpc.ExternalScalerStub(channel)
    finally:
        channel.close()
        background.stop()


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.ExternalScalerStub]:
    with serving(Background()) as running:
        yield running


SEEN: Counter[str] = Counter()
BY_TYPE: defaultdict[str, Counter[str]] = defaultdict(Counter)
ALLOWED = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}  # fmt: skip
KNOWN_KEYS = {
    name
    for kind in KINDS.values()
    for spec in kind.metadata.keys()  # noqa: SIM118 - a classmethod, not a dict
    for name in spec.names()
} | {"scalerType", "credentialsRef"}
BROKER_REFUSALS = ("is not an allowed broker address", "link-local or cloud metadata address")


def names_a_key(details: str, metadata: dict[str, str]) -> bool:
    """A refusal names the parameter (present or missing), the metadata as a whole
    (size limits), the credential set, or the broker address it will not dial."""
    return (
        any(f'"{name}"' in details for name in KNOWN_KEYS)
        or re.search(r'\b(parameter|key|credentialsRef) "[^"]*"', details) is not None
        or re.search(r"\bmetadata\b", details) is not None
        or 'credential set "' in details
        or any(phrase in details for phrase in BROKER_REFUSALS)
    )


def call(
    stub: pb_grpc.ExternalScalerStub, method: str, metadata: dict[str, str]
) -> tuple[grpc.StatusCode, str]:
    ref = pb.ScaledObjectRef(name="fuzz", namespace="fuzz", scalerMetadata=metadata)
    request: Any = ref if method != "GetMetrics" else pb.GetMetricsRequest(scaledObjectRef=ref)
    try:
        # The hang detector: a read is bounded by READ_TIMEOUT (and name resolution by
        # the same); a call still open well past it hangs.
        getattr(stub, method)(request, timeout=READ_TIMEOUT * 4)
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


#: The time limit of each fuzz test: bounded work (every call has a deadline), given
#: room on a loaded machine (about 5 ms a call there) rather than a failure.
LIMIT = max(900, EXAMPLES // 5)


@pytest.mark.timeout(LIMIT)
@settings(
    max_examples=EXAMPLES * 5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
@given(metadata=METADATA)
def test_no_metadata_breaks_the_server(
    stub: pb_grpc.ExternalScalerStub, metadata: dict[str, str]
) -> None:
    scaler_type = metadata.get("scalerType", "")
    named = scaler_type if scaler_type in KINDS else "(none or unknown)"
    for method in ("GetMetricSpec", "GetMetrics", "IsActive"):
        code, details = call(stub, method, metadata)
        SEEN[code.name] += 1
        BY_TYPE[named][code.name] += 1
        # The client's own deadline ("Deadline Exceeded"), not the scaler's answer.
        assert details != "Deadline Exceeded", f"{method} hung: {metadata!r}"
        assert code in ALLOWED, (method, code, details, metadata)
        if method == "GetMetricSpec":
            assert code == grpc.StatusCode.OK, (details, metadata)  # KEDA would hide it
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
            assert names_a_key(details, metadata), (method, details, metadata)
        assert len(details) <= 1024


def test_the_fuzz_ran_and_reports_its_statuses() -> None:
    """Runs after the fuzz test (file order): the statuses it saw, for the CI log."""
    total = sum(SEEN.values())
    print(f"\nfuzz: {total} calls, statuses {dict(SEEN.most_common())}")
    for scaler_type, seen in sorted(BY_TYPE.items()):
        print(f"  {scaler_type}: {dict(seen.most_common())}")
    assert total >= EXAMPLES * 3
    assert SEEN["INVALID_ARGUMENT"] > 0
    assert SEEN["OK"] > 0


# -- endpoint answers: what a broker or endpoint may say, not just what a trigger may ----
MARKER = "ECHO-MARKER-5e2b"
FIELDS = [
    "QueueUrl", "Attributes", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed", "Credentials", "AccessKeyId", "SecretAccessKey",
    "SessionToken", "Expiration", "__type", "message", "Error", "Code", "Message", "messages",
    "messages_ready", "messages_unacknowledged", "message_stats", "publish_details",
    "deliver_get_details", "rate", "items", "page_count", "filtered_count", "name",
]  # fmt: skip
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["", "3", "-1", "lots", "1e3", MARKER, "2026-12-02T00:00:00Z", "9" * 30]),
)
JSON_DOCS = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS), children, max_size=4),
    ),
    max_leaves=12,
)


def _xml(doc: Any) -> str:
    if isinstance(doc, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in doc.items() if k.isidentifier())
    if isinstance(doc, list):
        return "".join(f"<member>{_xml(v)}</member>" for v in doc)
    return "" if doc is None else str(doc)


#: An answer every read path accepts (GetQueueUrl, GetQueueAttributes, the management
#: API's queue and listing), which the fuzz then bends: fields dropped or retyped.
VALID: dict[str, Any] = {
    "QueueUrl": "http://127.0.0.1:1/123456789012/q",
    "Attributes": {"ApproximateNumberOfMessages": "3", "ApproximateNumberOfMessagesNotVisible": "1",
                   "ApproximateNumberOfMessagesDelayed": "0"},
    "messages": 4, "messages_ready": 3, "messages_unacknowledged": 1,
    "message_stats": {"publish_details": {"rate": 1.5}, "deliver_get_details": {"rate": 0.5}},
    "items": [{"name": "q", "messages": 4, "messages_ready": 3}], "page_count": 1,
}  # fmt: skip


@st.composite
def bent(draw: Any) -> bytes:
    """VALID with some fields dropped or replaced by any JSON value (none, often)."""

    def bend(doc: Any, depth: int) -> Any:
        if not isinstance(doc, dict) or depth > 2:
            return doc
        out = {}
        for key, value in doc.items():
            fate = draw(st.sampled_from(["keep"] * 6 + ["drop", "retype"]))
            if fate == "keep":
                out[key] = bend(value, depth + 1)
            elif fate == "retype":
                out[key] = draw(JSON_LEAVES)
        return out

    return json.dumps(bend(VALID, 0)).encode()


BODIES = st.one_of(
    bent(),
    bent(),
    JSON_DOCS.map(lambda d: json.dumps(d).encode()),
    JSON_DOCS.map(
        lambda d: (
            f"<AssumeRoleResponse><AssumeRoleResult>{_xml(d)}</AssumeRoleResult>"
            "</AssumeRoleResponse>".encode()
        )
    ),
    JSON_DOCS.map(lambda d: f"<ErrorResponse><Error>{_xml(d)}</Error></ErrorResponse>".encode()),
    st.sampled_from(
        [
            b"",
            b"{",
            b"NaN",
            b"[1, 2",
            b"<not xml",
            b"\xff\xfe",
            b"null",
            b"[]",
            f"<html>{MARKER}</html>".encode(),
            f'{{"x": "{MARKER}"'.encode(),
        ]
    ),
    st.binary(max_size=64),
)
ANSWERS = st.tuples(
    st.sampled_from(
        [200, 200, 200, 201, 204, 301, 302, 307, 308, 400, 401, 403, 404, 429, 500, 503, 599]
    ),
    st.sampled_from(
        [
            "application/json",
            "application/x-amz-json-1.0",
            "text/xml",
            "text/html",
            "application/octet-stream",
        ]
    ),
    BODIES,
)


class AnsweringEndpoint:
    """A loopback HTTP server answering every request with ``answer``."""

    def __init__(self) -> None:
        import http.server

        endpoint = self
        self.answer: tuple[int, str, bytes] = (200, "text/plain", b"")

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                code, kind, body = endpoint.answer
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if 300 <= code < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def answering() -> Iterator[tuple[pb_grpc.ExternalScalerStub, AnsweringEndpoint]]:
    endpoint = AnsweringEndpoint()
    try:
        with serving(Background(allow_aws_endpoints=endpoint.url)) as running:
            yield running, endpoint
    finally:
        endpoint.close()


ANSWERED: Counter[str] = Counter()
_QUEUES = itertools.count()


def answered_triggers(url: str) -> dict[str, dict[str, str]]:
    """One trigger per read path, each naming a fresh queue (and identity) so that no
    cache answers in the endpoint's place."""
    n = next(_QUEUES)
    aws = {"scalerType": "aws-sqs-queue", "awsRegion": "us-east-1", "awsEndpoint": url,
           "awsAccessKeyID": f"AKID{n}", "awsSecretAccessKeyFromEnv": "s"}  # fmt: skip
    return {
        "sqs by name (GetQueueUrl)": {**aws, "queueURL": f"q{n}"},
        "sqs by url": {**aws, "queueURL": f"{url}/123456789012/q{n}", "scaleOnDelayed": "true"},
        "sqs with a role (STS)": {**aws, "queueURL": f"q{n}",
                                  "awsRoleArn": "arn:aws:iam::123456789012:role/r"},
        "rabbitmq http": {"scalerType": "rabbitmq", "host": f"{url}/", "queueName": f"q{n}",
                          "mode": "MessageRate", "value": "1"},
        "rabbitmq http regex": {"scalerType": "rabbitmq", "host": f"{url}/", "queueName": f"q{n}.*",
                                "useRegex": "true", "operation": "avg"},
    }  # fmt: skip


@pytest.mark.timeout(LIMIT)
@settings(
    max_examples=max(EXAMPLES // 4, 50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
@given(answer=ANSWERS)
def test_no_endpoint_answer_breaks_the_server(
    answering: tuple[pb_grpc.ExternalScalerStub, AnsweringEndpoint], answer: tuple[int, str, bytes]
) -> None:
    stub, endpoint = answering
    endpoint.answer = answer
    for path, metadata in answered_triggers(endpoint.url).items():
        code, details = call(stub, "GetMetrics", metadata)
        ANSWERED[f"{path}: {code.name}"] += 1
        assert details != "Deadline Exceeded", (path, answer)
        assert code in ALLOWED, (path, code, details, answer)
        assert MARKER not in details, (path, details)  # an endpoint's body is never echoed
        assert len(details) <= 1024


def test_the_endpoint_fuzz_ran_and_reports_its_statuses() -> None:
    total = sum(ANSWERED.values())
    print(f"\nendpoint fuzz: {total} calls: {dict(sorted(ANSWERED.items()))}")
    assert total >= max(EXAMPLES // 4, 50) * 5
    assert any(key.endswith(": OK") for key in ANSWERED)
