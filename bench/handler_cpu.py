"""Our handlers' own CPU per call inside the running server, under warm polls.

    python bench/handler_cpu.py [--seconds 8] [--concurrency 10,50] [--jobs 100]

`bench/servicer_calls.py` times the handlers in a tight loop, where the CPU's caches
stay warm; in the server the same code runs between grpc.aio's own work and costs
several times as much. This runs `keda-queue-scaler serve` as its own process with
each of KEDA's three handlers wrapped to add up the event loop thread's CPU time
(``time.thread_time``) spent inside it, polls it as `bench/warm_polls.py` does (every
answer from the cache), and prints microseconds per call for each handler, their sum
per poll, and the whole process's CPU per poll from /proc. The wrapper's own cost
(two clock reads) is inside the figures. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import READY, redis_server  # noqa: E402
from bench.keda_pattern import cpu_seconds  # noqa: E402
from bench.rpc_throughput import process_pid  # noqa: E402
from bench.warm_polls import polls  # noqa: E402
from scaler.proto import externalscaler_pb2 as pb  # noqa: E402

METHODS = ("GetMetricSpec", "GetMetrics", "IsActive")


def child(out: str, serve_args: list[str]) -> None:
    """`serve`, with the three handlers timed; the totals go to ``out`` at exit."""
    from scaler.cli import main as cli_main
    from scaler.service import ExternalScalerService

    totals = {m: [0.0, 0] for m in METHODS}

    def timed(method: str) -> Any:
        inner = getattr(ExternalScalerService, method)

        async def handler(self: ExternalScalerService, request: Any, context: Any) -> Any:
            started = time.thread_time()
            try:
                return await inner(self, request, context)
            finally:
                total = totals[method]
                total[0] += time.thread_time() - started
                total[1] += 1

        return handler

    for method in METHODS:
        setattr(ExternalScalerService, method, timed(method))
    atexit.register(lambda: Path(out).write_text(json.dumps(totals)))
    cli_main(["serve", *serve_args])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement [8]")
    parser.add_argument("--concurrency", default="10,50", help="comma list [10,50]")
    parser.add_argument("--jobs", type=int, default=100, help="distinct ScaledJobs [100]")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(args.child, rest)
        return
    with redis_server() as client, tempfile.TemporaryDirectory() as tmp:
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
        print(f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, grpcio "
              f"{grpc.__version__}; {args.jobs} ScaledJobs, {args.seconds:g}s a row; "
              "µs of the loop thread's CPU per call")  # fmt: skip
        row = "{:>5} {:>9} {:>14} {:>11} {:>10} {:>10} {:>14}"
        print(row.format("conc", "polls/s", "GetMetricSpec", "GetMetrics", "IsActive",
                         "per poll", "server per poll"))  # fmt: skip
        for c in (int(x) for x in args.concurrency.split(",")):
            out = str(Path(tmp) / f"handlers-{c}.json")
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", out,
                   "--host", "127.0.0.1", "--port", "0", "--metrics-port", "-1",
                   "--cache-ttl", "60"]  # fmt: skip
            with process_pid(cmd, READY, True) as (pid, served):
                cpu0 = cpu_seconds(pid)
                done, elapsed, _ = asyncio.run(polls(served, refs, c, args.seconds))
                server = (cpu_seconds(pid) - cpu0) / done * 1e6
            totals = json.loads(Path(out).read_text())
            each = [totals[m][0] / max(1, totals[m][1]) * 1e6 for m in METHODS]
            print(row.format(c, f"{done / elapsed:.0f}", *(f"{x:.1f}" for x in each),
                             f"{sum(each):.0f}", f"{server:.0f}"), flush=True)  # fmt: skip
        print(
            "# per poll: the three handlers' sum; server per poll: the whole process "
            "(grpc.aio's own work included), from /proc"
        )


if __name__ == "__main__":
    main()
