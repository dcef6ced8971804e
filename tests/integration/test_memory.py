"""Worst case memory: many distinct triggers and passwords, on a real server process.

Row 3 of the security review: 3,000 distinct passwords held 3,030 Redis connections and
pushed RSS to 440 MB; 10,000 refused hosts, 364 MB; nothing was released inside the
600 s idle window. The chart's memory limit is 256 Mi.

Marked slow (a few thousand calls): `make test-slow`; CI runs it.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.brokers import MotoServer, RedisProcess
from tests.conftest import metrics_request

CHART_VALUES = Path(__file__).parents[2] / "charts" / "keda-queue-scaler" / "values.yaml"
READY = re.compile(r"serving gRPC \(\w+\) on 127\.0\.0\.1:(?P<port>\d+);")


def chart_memory_limit() -> int:
    text = yaml.safe_load(CHART_VALUES.read_text())["resources"]["limits"]["memory"]
    assert text.endswith("Mi")
    return int(text[:-2]) * 2**20


def rss(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory in bytes: now (VmRSS) or at its peak (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


async def burst(stub: pb_grpc.ExternalScalerStub, metas: list[dict[str, str]]) -> set[str]:
    codes: set[str] = set()
    for start in range(0, len(metas), 100):
        batch = metas[start : start + 100]
        results = await asyncio.gather(
            *(stub.GetMetrics(metrics_request(m), timeout=30) for m in batch),
            return_exceptions=True,
        )
        for result in results:
            codes.add(result.code().name if isinstance(result, grpc.aio.AioRpcError) else "OK")
            if isinstance(result, Exception) and not isinstance(result, grpc.aio.AioRpcError):
                raise result
    return codes


async def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    """`serve` as its own process on a free port, its log in a file (a pipe nobody
    reads would fill and block the server); (process, gRPC port)."""
    log = tmp_path / "scaler.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scaler", "serve", "--host", "127.0.0.1", "--port", "0",
             "--metrics-port", "-1", "--read-timeout", "2", *args],
            stderr=handle, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
    async with asyncio.timeout(30):
        while True:
            assert proc.poll() is None, log.read_text()
            if m := READY.search(log.read_text()):
                return proc, int(m["port"])
            await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_distinct_passwords_and_hosts_stay_under_the_chart_limit(
    redis_db: RedisProcess, tmp_path: Path
) -> None:
    proc, port = await serve(tmp_path)
    try:
        admin = redis_db.client()

        def ours() -> int:
            return sum(1 for c in admin.client_list() if c.get("name") == "keda-queue-scaler")

        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            passwords = [
                {"scalerType": "redis", "listName": "jobs", "address": redis_db.address,
                 "passwordFromEnv": f"password-{i}"}
                for i in range(3000)
            ]  # fmt: skip
            assert await burst(stub, passwords) == {"OK"}  # a password-less Redis takes any
            after_passwords = rss(proc.pid)
            connections = ours()
            # 10,000 distinct refused hosts: 127.0.0.0/8 is all loopback, port 1 is closed.
            hosts = [
                {"scalerType": "redis", "listName": "jobs",
                 "address": f"127.{1 + i // 250}.{i % 250}.1:1"}
                for i in range(10_000)
            ]  # fmt: skip
            assert await burst(stub, hosts) == {"UNAVAILABLE"}
            after_hosts = rss(proc.pid)
        limit = chart_memory_limit()
        print(
            f"\nRSS after 3,000 passwords {after_passwords / 2**20:.0f} MiB "
            f"({connections} connections to Redis), after 10,000 refused hosts "
            f"{after_hosts / 2**20:.0f} MiB; chart limit {limit / 2**20:.0f} MiB"
        )
        assert connections <= 256  # --max-broker-clients
        assert max(after_passwords, after_hosts) < limit
        # The evicted clients' connections are gone too: only the budget's are left.
        async with asyncio.timeout(30):
            while ours() > 256:
                await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_thousand_aws_identities_stay_under_the_chart_limit(
    moto: MotoServer, tmp_path: Path
) -> None:
    """Before (#18): one aiobotocore client per identity, about 9 MiB each; 200
    identities took RSS from 84 to 1,819 MiB."""
    import boto3

    boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1",
                 aws_access_key_id="a", aws_secret_access_key="b").create_queue(QueueName="jobs")  # fmt: skip
    # Memory, not latency: moto answers 100 concurrent reads slowly on a busy machine.
    proc, port = await serve(
        tmp_path, "--allow-aws-endpoints", moto.endpoint, "--read-timeout", "20"
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            start = rss(proc.pid)
            identities = [
                {"scalerType": "aws-sqs-queue", "queueURL": "jobs", "awsRegion": "us-east-1",
                 "awsEndpoint": moto.endpoint, "awsAccessKeyID": f"AKID{i:05d}",
                 "awsSecretAccessKeyFromEnv": f"secret-{i}"}
                for i in range(1000)
            ]  # fmt: skip
            assert await burst(stub, identities) == {"OK"}
            after = rss(proc.pid)
        signed = len(set(moto.keys_used("GetQueueAttributes")))
        limit = chart_memory_limit()
        print(
            f"\nRSS {start / 2**20:.0f} MiB at start, {after / 2**20:.0f} MiB after 1,000 AWS "
            f"identities ({signed} distinct keys signed); chart limit {limit / 2**20:.0f} MiB"
        )
        assert signed == 1000
        assert after < limit
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
