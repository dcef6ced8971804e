"""SQS requests for N ScaledJobs polling one queue: ours, measured, next to KEDA's
built-in aws-sqs-queue trigger (one GetQueueAttributes per ScaledJob per poll).

    python bench/sqs_cost.py [--jobs 50] [--interval 5] [--seconds 60] [--ttl 1]

Runs our server in-process against moto in server mode (a real HTTP SQS API on
loopback) and N simulated ScaledJobs, each polling like KEDA — GetMetricSpec, then
GetMetrics, then IsActive — every --interval seconds from a random phase (KEDA's
ScaledJobs are not synchronised). GetQueueAttributes requests are counted on the
emulator side. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scaler.proto import externalscaler_pb2 as pb  # noqa: E402
from scaler.proto import externalscaler_pb2_grpc as pb_grpc  # noqa: E402
from scaler.server import ScalerServer  # noqa: E402
from scaler.settings import Settings  # noqa: E402
from tests.brokers import MotoServer  # noqa: E402


async def scaled_job(stub: pb_grpc.ExternalScalerStub, ref: pb.ScaledObjectRef, interval: float,
                     until: float) -> int:  # fmt: skip
    loop = asyncio.get_running_loop()
    await asyncio.sleep(random.uniform(0, interval))
    polls = 0
    while loop.time() < until:
        spec = await stub.GetMetricSpec(ref)
        name = spec.metricSpecs[0].metricName
        await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name))
        await stub.IsActive(ref)
        polls += 1
        await asyncio.sleep(interval)
    return polls


async def run(jobs: int, interval: float, seconds: float, ttl: float) -> None:
    moto = MotoServer()
    moto.start()
    sqs = moto.sqs()
    url = sqs.create_queue(QueueName="work")["QueueUrl"]  # type: ignore[attr-defined]
    for i in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))  # type: ignore[attr-defined]
    settings = Settings(host="127.0.0.1", port=0, metrics_port=-1, cache_ttl=ttl)
    server = ScalerServer(settings)
    await server.start()
    metadata = {
        "scalerType": "aws-sqs-queue", "queueURL": url, "awsRegion": "us-east-1",
        "awsEndpoint": moto.endpoint, "awsAccessKeyIDFromEnv": "AKIDBENCH",
        "awsSecretAccessKeyFromEnv": "bench",
    }  # fmt: skip
    before = moto.count("GetQueueAttributes")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            until = asyncio.get_running_loop().time() + seconds
            polls = await asyncio.gather(
                *(
                    scaled_job(stub, pb.ScaledObjectRef(name=f"job-{i}", namespace="bench",
                                                        scalerMetadata=metadata), interval, until)
                    for i in range(jobs)
                )
            )  # fmt: skip
    finally:
        await server.stop(0)
        moto.stop()
    ours = moto.count("GetQueueAttributes") - before
    total_polls = sum(polls)
    per_hour = 3600 / seconds
    builtin_hour = jobs * 3600 / interval
    print(f"# {jobs} ScaledJobs on one queue, pollingInterval {interval:g}s, cache TTL {ttl:g}s, "
          f"measured over {seconds:g}s")  # fmt: skip
    print(f"polls made (GetMetricSpec+GetMetrics+IsActive): {total_polls}")
    print(f"GetQueueAttributes measured, ours:        {ours}  ({ours * per_hour:,.0f}/hour)")
    print(f"KEDA built-in, one per ScaledJob per poll: {total_polls}  ({builtin_hour:,.0f}/hour)")
    bound = min(builtin_hour, 3600 / ttl) if ttl > 0 else builtin_hour
    print(f"ours, upper bound min(N*3600/interval, 3600/ttl): {bound:,.0f}/hour")
    print(f"ratio built-in / ours: {total_polls / max(ours, 1):.1f}x fewer requests")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50, help="ScaledJobs on the queue [50]")
    parser.add_argument("--interval", type=float, default=5.0, help="pollingInterval s [5]")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure [60]")
    parser.add_argument("--ttl", type=float, default=1.0, help="our --cache-ttl [1]")
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.interval, args.seconds, args.ttl))


if __name__ == "__main__":
    main()
