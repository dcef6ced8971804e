"""Metadata fuzzing through real gRPC: every scalerType's keys with hostile values.

No call may end in INTERNAL or UNKNOWN, none may hang past the read timeout, and
every refusal (INVALID_ARGUMENT, PERMISSION_DENIED) must name a key or the address it
refused. The scaler runs in its own thread and event loop, called through a blocking
channel, so hypothesis drives plain functions.

Only loopback is ever dialed: the server's broker policy allows 127.0.0.1 and ::1
alone, and its resolver refuses every name without asking DNS.

About a minute in CI: 5 x ``KQS_FUZZ_EXAMPLES`` examples (default 800), three calls
each; set it higher for a longer run (``make fuzz EXAMPLES=20000``).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.guard import BrokerPolicy
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.server import ScalerServer
from scaler.triggers import KINDS
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
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
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
    return st.one_of(
        st.dictionaries(keys, VALUES, max_size=8),
        st.dictionaries(keys, VALUES, max_size=3).map(lambda extra: {**base, **extra}),
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
    """A ScalerServer in its own thread and event loop."""

    def __init__(self) -> None:
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
        policy = BrokerPolicy(("127.0.0.1", "[::1]"), resolve=_refuse_names)
        self.server = ScalerServer(
            test_settings(read_timeout=READ_TIMEOUT, metrics_port=-1), policy=policy
        )
        await self.server.start()

    def stop(self) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.stop(grace=1), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture(scope="module")
def stub() -> Iterator[pb_grpc.ExternalScalerStub]:
    background = Background()
    background.thread.start()
    assert background.ready.wait(30)
    assert background.server is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{background.server.port}")
    yield pb_grpc.ExternalScalerStub(channel)
    channel.close()
    background.stop()


SEEN: Counter[str] = Counter()
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
        or re.search(r'\b(parameter|key|credentialsRef) "[^"]+"', details) is not None
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


# About 25 s here; bounded work (every call has a deadline), so a loaded machine gets
# room rather than a failure.
@pytest.mark.timeout(900)
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
    for method in ("GetMetricSpec", "GetMetrics", "IsActive"):
        code, details = call(stub, method, metadata)
        SEEN[code.name] += 1
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
    assert total >= EXAMPLES * 3
    assert SEEN["INVALID_ARGUMENT"] > 0
    assert SEEN["OK"] > 0
