"""Cold reads: an uncached GetMetrics next to the bare Redis round trips it makes.

    python bench/cold_reads.py [--calls 2000]

The scaler runs with --cache-ttl 0 (every call reads Redis) as its own process;
one caller sends GetMetrics one at a time. Next to it, the same caller does what
the scaler does for a list, TYPE then LLEN, directly with redis.asyncio, a single
PING, and GetMetrics against a no-op grpc.aio server (the bare gRPC round trip).
What remains of ours after the gRPC and Redis round trips is our own work per
uncached read: metadata lookup, single-flight bookkeeping, metrics. Prints
numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import redis_server, start_scaler  # noqa: E402
from scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402


async def timed(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    for _ in range(50):  # warm up connections
        await call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


def summary(name: str, values: list[float]) -> str:
    q = statistics.quantiles(values, n=100)
    return (
        f"{name:<34}{q[49] * 1000:>9.3f}{q[98] * 1000:>9.3f}{statistics.mean(values) * 1000:>9.3f}"
    )


async def measure(grpc_port: int, noop_port: int, redis_port: int, calls: int) -> None:
    client = Redis(port=redis_port)
    metadata = {"scalerType": "redis", "address": f"127.0.0.1:{redis_port}", "listName": "jobs"}
    request = pb.GetMetricsRequest(
        scaledObjectRef=pb.ScaledObjectRef(name="b", namespace="b", scalerMetadata=metadata),
        metricName="redis-jobs",
    )
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{noop_port}") as noop_channel,
    ):
        stub = pb_grpc.ExternalScalerStub(channel)
        noop = pb_grpc.ExternalScalerStub(noop_channel)

        async def type_then_llen() -> None:
            await client.type("jobs")
            await client.llen("jobs")

        results = {
            "GetMetrics, uncached (ours)": await timed(lambda: stub.GetMetrics(request), calls),
            "GetMetrics, no-op grpc.aio server": await timed(
                lambda: noop.GetMetrics(request), calls
            ),
            "Redis TYPE + LLEN (redis.asyncio)": await timed(type_then_llen, calls),
            "Redis PING (redis.asyncio)": await timed(client.ping, calls),
        }
    await client.aclose()
    print(f"{'':<34}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, values in results.items():
        print(summary(name, values))
    ours = statistics.median(results["GetMetrics, uncached (ours)"])
    bare = statistics.median(results["Redis TYPE + LLEN (redis.asyncio)"])
    rpc = statistics.median(results["GetMetrics, no-op grpc.aio server"])
    extra = (ours - bare - rpc) * 1000
    print(
        f"p50: ours {ours * 1000:.3f} ms = gRPC round trip {rpc * 1000:.3f} + Redis round "
        f"trips {bare * 1000:.3f} + our work {extra:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement [2000]")
    args = parser.parse_args()
    with redis_server() as client:
        port = client.connection_pool.connection_kwargs["port"]
        scaler, grpc_port = start_scaler("--cache-ttl", "0")
        noop = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "noop_server.py")],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            assert noop.stdout is not None
            noop_port = int(noop.stdout.readline().split()[1])
            print(f"# {os.cpu_count()} CPUs, sequential calls on loopback, scaler --cache-ttl 0")
            asyncio.run(measure(grpc_port, noop_port, port, args.calls))
        finally:
            for proc in (scaler, noop):
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
