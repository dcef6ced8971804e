"""GetMetrics (and GetMetrics+IsActive pairs) per second with a warm cache, next to a
no-op grpc.aio server, in one run on this machine. Prints numbers; asserts nothing.

    python bench/rpc_throughput.py [--seconds 5] [--concurrency 1,50]

Both servers run as separate processes (as in production); the load generator is
this process, one grpc.aio channel, N concurrent callers. Our server reads a real
redis-server (started here on a free loopback port) through its 1 s cache, so with a
warm cache nearly every call is a cache hit: the numbers show the cost of our
servicer, metadata parsing and metrics over a bare grpc.aio handler.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    NOOP_READY,
    READY,
    drain,
    noop_command,
    redis_server,
    serve_command,
)
from scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402


@contextmanager
def process(cmd: list[str], ready: re.Pattern[str], from_stderr: bool) -> Iterator[int]:
    with process_pid(cmd, ready, from_stderr) as (_, port):
        yield port


@contextmanager
def process_pid(
    cmd: list[str], ready: re.Pattern[str], from_stderr: bool
) -> Iterator[tuple[int, int]]:
    """A server process started from ``cmd``: (its pid, the port its ready line gives)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    stream = proc.stderr if from_stderr else proc.stdout
    assert stream is not None
    try:
        for line in stream:
            if m := ready.search(line):
                drain(stream)
                drain(proc.stdout if from_stderr else proc.stderr)
                yield proc.pid, int(m.group(1))
                break
        else:
            raise SystemExit(f"{cmd} did not start")
    finally:
        proc.terminate()
        proc.wait()


async def load(port: int, request: pb.GetMetricsRequest, concurrency: int, seconds: float,
               pairs: bool) -> tuple[float, list[float]]:  # fmt: skip
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        for _ in range(20):  # warm up the channel and the cache
            await stub.GetMetrics(request)
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                await stub.GetMetrics(request)
                if pairs:
                    await stub.IsActive(request.scaledObjectRef)
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement [5]")
    parser.add_argument("--concurrency", default="1,50", help="comma list [1,50]")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    with redis_server() as client:
        client.rpush("jobs", *range(10))
        port = client.connection_pool.connection_kwargs["port"]
        metadata = {"scalerType": "redis", "address": f"127.0.0.1:{port}", "listName": "jobs"}
        request = pb.GetMetricsRequest(
            scaledObjectRef=pb.ScaledObjectRef(
                name="bench", namespace="default", scalerMetadata=metadata
            ),
            metricName="redis-jobs",
        )
        ours_cmd = serve_command()
        noop_cmd = noop_command()
        cpus, py = os.cpu_count(), sys.version.split()[0]
        print(f"# {cpus} CPUs, Python {py}, grpcio {grpc.__version__}, {args.seconds:g}s a row,")
        print("# warm cache (ttl 1s), a Redis list of 10; ratio = ours / no-op calls/s")
        row = "{:<22}{:<10}{:>5}{:>10}{:>9}{:>9}{:>10}"
        print(row.format("call", "server", "conc", "calls/s", "p50 ms", "p99 ms", "vs no-op"))
        with process(ours_cmd, READY, True) as ours, process(noop_cmd, NOOP_READY, False) as noop:
            for pairs in (False, True):
                label = "GetMetrics+IsActive" if pairs else "GetMetrics"
                for c in levels:
                    base_rate, base_lat = asyncio.run(load(noop, request, c, args.seconds, pairs))
                    rate, lat = asyncio.run(load(ours, request, c, args.seconds, pairs))
                    ratio = f"{rate / base_rate:.2f}x"
                    for name, r, lt, shown in (
                        ("no-op", base_rate, base_lat, ""),
                        ("ours", rate, lat, ratio),
                    ):
                        cells = (f"{r:.0f}", f"{pct(lt, 50):.2f}", f"{pct(lt, 99):.2f}", shown)
                        print(row.format(label, name, c, *cells))


if __name__ == "__main__":
    main()
