"""KEDA's poll (GetMetricSpec, GetMetrics, IsActive) served from the cache, next to a
no-op grpc.aio server in the same run: polls per second and the server's own CPU per
poll. Prints numbers; asserts nothing.

    python bench/warm_polls.py [--seconds 8] [--concurrency 1,10,50] [--jobs 100]
                               [--event-loop uvloop|asyncio]

Both servers run as their own processes (as in production), each measured alone from
/proc (utime + stime of the server process, not the caller). The callers are this
process: one grpc.aio channel, N concurrent pollers over --jobs distinct ScaledJobs
(each its own metadata, as KEDA sends it) on 10 Redis lists; the scaler's cache
(ttl 60 s) answers every call after the first, so the numbers are the cost of our
servicer (parsing, policy, cache, metrics) over a bare grpc.aio handler. Both run on
the event loop --event-loop names (serve's default, uvloop, unless asyncio is given).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    NOOP_READY,
    READY,
    noop_command,
    redis_server,
    serve_command,
)
from bench.keda_pattern import cpu_seconds  # noqa: E402
from bench.rpc_throughput import process_pid  # noqa: E402
from scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402


async def polls(port: int, refs: list[pb.ScaledObjectRef], concurrency: int,
                seconds: float) -> tuple[int, float, list[float]]:  # fmt: skip
    """(polls done, seconds taken, latency of each poll)."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        for ref in refs:  # warm: every trigger parsed, every list read once
            await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref))
        deadline = time.perf_counter() + seconds

        async def poller(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                ref = refs[i % len(refs)]
                i += concurrency
                t = time.perf_counter()
                spec = await stub.GetMetricSpec(ref)
                name = spec.metricSpecs[0].metricName
                await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name))
                await stub.IsActive(ref)
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(poller(k) for k in range(concurrency)))
        return len(latencies), time.perf_counter() - started, latencies


def measure(pid: int, port: int, refs: list[pb.ScaledObjectRef], concurrency: int,
            seconds: float) -> tuple[float, float, float]:  # fmt: skip
    """(polls/s, server CPU µs per poll, p99 ms)."""
    cpu0 = cpu_seconds(pid)
    done, elapsed, latencies = asyncio.run(polls(port, refs, concurrency, seconds))
    cpu = cpu_seconds(pid) - cpu0
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0.0
    return done / elapsed, cpu / done * 1e6, p99


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement [8]")
    parser.add_argument("--concurrency", default="1,10,50", help="comma list [1,10,50]")
    parser.add_argument("--jobs", type=int, default=100, help="distinct ScaledJobs [100]")
    parser.add_argument("--heavy-noop", action="store_true",
                        help="the no-op server first imports what serve imports")  # fmt: skip
    parser.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="both servers' event loop [uvloop]")  # fmt: skip
    args = parser.parse_args()
    with redis_server() as client:
        port = client.connection_pool.connection_kwargs["port"]
        for q in range(10):
            client.rpush(f"queue-{q}", *range(q + 1))
        refs = [
            pb.ScaledObjectRef(
                name=f"job-{i}", namespace="bench",
                scalerMetadata={"scalerType": "redis", "address": f"127.0.0.1:{port}",
                                "listName": f"queue-{i % 10}", "listLength": "5"},
            )
            for i in range(args.jobs)
        ]  # fmt: skip
        ours_cmd = serve_command("--cache-ttl", "60", "--event-loop", args.event_loop)
        noop_cmd = noop_command("--event-loop", args.event_loop,
                                *(["--heavy"] if args.heavy_noop else []))  # fmt: skip
        print(f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, grpcio "
              f"{grpc.__version__}, {args.event_loop}; {args.jobs} ScaledJobs, "
              f"{args.seconds:g}s a row; a poll is GetMetricSpec + GetMetrics + "
              "IsActive")  # fmt: skip
        row = "{:>5} {:>12} {:>12} {:>10} {:>13} {:>13} {:>10} {:>9} {:>9}"
        print(row.format("conc", "no-op/s", "ours/s", "rate", "no-op µs CPU", "ours µs CPU",
                         "CPU eff", "no-op p99", "ours p99"))  # fmt: skip
        with (
            process_pid(ours_cmd, READY, True) as (ours_pid, ours),
            process_pid(noop_cmd, NOOP_READY, False) as (noop_pid, noop),
        ):
            for c in (int(x) for x in args.concurrency.split(",")):
                base = measure(noop_pid, noop, refs, c, args.seconds)
                mine = measure(ours_pid, ours, refs, c, args.seconds)
                print(row.format(
                    c, f"{base[0]:.0f}", f"{mine[0]:.0f}", f"{mine[0] / base[0]:.2f}x",
                    f"{base[1]:.0f}", f"{mine[1]:.0f}", f"{base[1] / mine[1]:.2f}",
                    f"{base[2]:.2f}", f"{mine[2]:.2f}",
                ), flush=True)  # fmt: skip
        print(
            "# rate = ours / no-op polls per second; CPU eff = no-op CPU per poll / ours "
            "(1.00: our servicer costs nothing over a bare handler)"
        )


if __name__ == "__main__":
    main()
