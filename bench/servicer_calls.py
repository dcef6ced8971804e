"""Our servicer's own cost per call, without gRPC: KEDA's three calls per poll
(GetMetricSpec, GetMetrics, IsActive) made straight on the servicer, in this process,
for --jobs distinct ScaledJobs on --queues Redis lists, every reading cached (ttl
60 s). Prints microseconds per call (the median of --rounds rounds) and, with
--profile, where the time goes. Asserts nothing.

    python bench/servicer_calls.py [--jobs 2000] [--queues 50] [--rounds 5] [--profile]

This is what our handlers add to each call on top of grpc.aio's own cost (which
bench/warm_polls.py and bench/keda_pattern.py measure with the no-op server).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import redis_server  # noqa: E402
from scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from scaler.server import ScalerServer  # noqa: E402
from scaler.settings import Settings  # noqa: E402


class Context:
    """Stands in for grpc.aio's ServicerContext: a valid call never aborts."""

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"the bench's call failed: {code} {details}")


async def run(port: int, jobs: int, queues: int, rounds: int, profile: bool) -> None:
    settings = Settings(host="127.0.0.1", port=0, metrics_port=-1, cache_ttl=60,
                        max_metric_series=jobs, max_triggers=max(jobs, 1000))  # fmt: skip
    service = ScalerServer(settings).service

    def make_ref(i: int) -> pb.ScaledObjectRef:
        meta = {"scalerType": "redis", "address": f"127.0.0.1:{port}",
                "listName": f"jobs-{i % queues}", "listLength": "5"}  # fmt: skip
        return pb.ScaledObjectRef(namespace=f"team-{i % 20}", name=f"job-{i}", scalerMetadata=meta)

    refs = [make_ref(i) for i in range(jobs)]
    context: Any = Context()
    asks = []
    for ref in refs:  # KEDA asks for the spec's name with its "s<index>-" prefix
        spec = await service.GetMetricSpec(ref, context)
        asks.append(pb.GetMetricsRequest(
            scaledObjectRef=ref, metricName=f"s0-{spec.metricSpecs[0].metricName}"))  # fmt: skip

    async def one_round() -> float:
        started = time.perf_counter()
        for ref, ask in zip(refs, asks, strict=True):
            await service.GetMetricSpec(ref, context)
            await service.GetMetrics(ask, context)
            await service.IsActive(ref, context)
        return (time.perf_counter() - started) / (3 * jobs) * 1e6

    await one_round()  # warm: every trigger parsed, every list read
    per_call = [await one_round() for _ in range(rounds)]
    print(f"{jobs} ScaledJobs on {queues} lists, {3 * jobs} calls per round, {rounds} rounds: "
          f"median {statistics.median(per_call):.1f} µs per call "
          f"(min {min(per_call):.1f}, max {max(per_call):.1f})")  # fmt: skip
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await one_round()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top 15")
    args = parser.parse_args()
    with redis_server() as client:
        port = int(client.connection_pool.connection_kwargs["port"])
        asyncio.run(run(port, args.jobs, args.queues, args.rounds, args.profile))


if __name__ == "__main__":
    main()
