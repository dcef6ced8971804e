"""Fixtures: real brokers (session-scoped, flushed per test) and the server under test."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.registry import KINDS, Kind, Triggers
from scaler.server import ScalerServer
from scaler.settings import Settings
from scaler.trigger import Adapter
from tests import loopback
from tests.brokers import (
    HangingServer,
    MotoServer,
    RabbitMQProcess,
    RedisCluster,
    RedisProcess,
    RedisSentinel,
)
from tests.frameworks.peers import Peer, started
from tests.kedago import tools_dir

REDIS_PASSWORD = "s3cret-Pa55"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A cancelled CI job sends SIGTERM. As a KeyboardInterrupt (what Ctrl-C gives), it
    # lets pytest tear down the fixtures: brokers and the e2e cluster stop, not linger.
    signal.signal(signal.SIGTERM, _interrupt)
    loopback.install()


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Fails the test that tried to dial anything but loopback (tests/loopback.py)."""
    loopback.take()
    yield
    refused = loopback.take()
    assert not refused, f"the test dialed non-loopback addresses (refused): {refused[:5]}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption(
        "--run-e2e", action="store_true",
        help="run tests/e2e: the real KEDA on a real API server (make e2e)",
    )  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def keda_tools() -> Path:
    """KEDA's Go test programs, built before the first test that uses them."""
    return tools_dir()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server: RedisProcess) -> RedisProcess:
    """The shared server, emptied and with command counters reset, restarted if a test
    stopped it."""
    if redis_server.proc is None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()  # every database
    client.config_resetstat()
    return redis_server


@pytest.fixture(scope="session")
def redis_password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis-auth"), password=REDIS_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"), password=REDIS_PASSWORD)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    sentinel = RedisSentinel(tmp_path_factory.mktemp("redis-sentinel"))
    try:
        sentinel.start()
        yield sentinel
    finally:
        sentinel.stop()


@pytest.fixture(scope="session")
def redis_sentinel_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    """Sentinel and master both password-protected (different passwords)."""
    sentinel = RedisSentinel(
        tmp_path_factory.mktemp("redis-sentinel-auth"),
        sentinel_password="sentinel-" + REDIS_PASSWORD,
        master_password=REDIS_PASSWORD,
    )
    try:
        sentinel.start()
        yield sentinel
    finally:
        sentinel.stop()


@pytest.fixture(scope="session")
def peers() -> Iterator[dict[str, Peer]]:
    """The task frameworks' peer processes (tests/frameworks/), for queueFormat tests."""
    yield from started()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The shared emulator, emptied, with its request log cleared."""
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQProcess]:
    from tests.certs import make_pki

    pki = make_pki(tmp_path_factory.mktemp("rabbitmq-pki"))
    broker = RabbitMQProcess(
        tmp_path_factory.mktemp("rabbitmq"), tls=(pki.server_cert, pki.server_key, pki.ca)
    )
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
def hanging_server() -> Iterator[HangingServer]:
    server = HangingServer()
    server.start()
    yield server
    server.stop()


class Clock:
    """A monotonic clock a test moves by hand (TTLs, idle timeouts)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_settings(**overrides: Any) -> Settings:
    """Settings for an in-process server on loopback, free ports."""
    base = Settings(host="127.0.0.1", port=0, metrics_host="127.0.0.1", metrics_port=0)
    return dataclasses.replace(base, **overrides)


# pytest would otherwise collect the helper above as a test.
test_settings.__test__ = False  # type: ignore[attr-defined]


@dataclasses.dataclass
class Running:
    server: ScalerServer
    channel: grpc.aio.Channel
    stub: pb_grpc.ExternalScalerStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def sample(self, name: str, **labels: str) -> float:
        value = self.server.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


ServerFactory = Callable[..., AbstractAsyncContextManager[Running]]


@pytest.fixture
def start_server() -> ServerFactory:
    """``async with start_server(adapters=..., **settings) as running:`` — a real
    grpc.aio server on a free port and a client channel to it."""

    @asynccontextmanager
    async def start(
        *,
        adapters: dict[str, Adapter] | None = None,
        clock: Callable[[], float] = time.monotonic,
        kube: Any = None,
        kinds: Mapping[str, Kind] = KINDS,
        wall_clock: Callable[[], float] = time.time,
        **overrides: Any,
    ) -> AsyncIterator[Running]:
        settings = test_settings(**overrides)
        server = ScalerServer(
            settings, adapters=adapters, registry=CollectorRegistry(), clock=clock, kube=kube,
            kinds=kinds, wall_clock=wall_clock,
        )  # fmt: skip
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Running(server, channel, pb_grpc.ExternalScalerStub(channel))
        finally:
            await channel.close()
            await server.stop(grace=1)

    return start


def ref(metadata: dict[str, str], name: str = "job", namespace: str = "default") -> Any:
    return pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=metadata)


def metrics_request(metadata: dict[str, str], metric_name: str = "") -> Any:
    return pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=metric_name)


async def run_cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run `python -m scaler ARGS` without blocking the event loop (a server under
    test may be running in it); returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scaler", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def evaluate(
    triggers: Triggers, metadata: dict[str, str], now: float | None = None
) -> tuple[float, bool]:
    """(value, active) for metadata, read straight from the adapter (no cache, no gRPC),
    at the wall clock's ``now`` (injected, for an age; the real clock by default)."""
    trigger = triggers.parse(metadata)
    sample = await triggers.adapter_for(trigger).read(trigger.query)
    return trigger.evaluate(sample, time.time() if now is None else now)
