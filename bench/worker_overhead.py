"""The worker's cost per item: claim and acknowledgement, in milliseconds, per broker.

Starts a redis-server, moto's SQS and a RabbitMQ node on loopback (as the tests do),
puts ITEMS items on each queue with the enqueue helper, then claims and acknowledges
them one by one through ``scaler.worker`` and prints the median and 95th percentile
of each step, and of a whole ``keda-queue-scaler work --max-items ITEMS -- true``
run per item (CMD's own start included; ``true`` alone is printed beside it).
Nothing is asserted.

    .venv/bin/python bench/worker_overhead.py [--items 500] [--brokers redis-list,sqs]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, as a script

from scaler.worker import open_source
from tests.brokers import MotoServer, RabbitMQProcess, RedisProcess
from tests.workq import WorkQueue, rabbitmq, redis_list, redis_stream, sqs


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered) * 1000:.2f} / {p95 * 1000:.2f}"


async def measure(queue: WorkQueue, items: int) -> tuple[list[float], list[float], float]:
    env = {**os.environ, **queue.env}
    source = open_source(queue.meta, environ=env, lease=60)
    try:
        for i in range(items):
            await source.put(f"item-{i}".encode())
        claims, acks = [], []
        for _ in range(items):
            start = time.perf_counter()
            claim = await source.claim(0)
            claimed = time.perf_counter()
            assert claim is not None
            await source.ack(claim)
            claims.append(claimed - start)
            acks.append(time.perf_counter() - claimed)
        for i in range(items):
            await source.put(f"item-{i}".encode())
    finally:
        await source.aclose()
    args = [sys.executable, "-m", "scaler", "work", *queue.meta_args(), "--max-items",
            str(items), "--wait", "0", "--log-level", "warning", "--", "true"]  # fmt: skip
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*args, env=env)
    await asyncio.wait_for(proc.wait(), 600)
    return claims, acks, (time.perf_counter() - start) / items


def cmd_alone(items: int) -> float:
    start = time.perf_counter()
    for _ in range(items):
        subprocess.run(["true"], check=True)
    return (time.perf_counter() - start) / items


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--brokers", default="redis-list,redis-stream,sqs,rabbitmq")
    args = parser.parse_args()
    wanted = args.brokers.split(",")
    work = Path(tempfile.mkdtemp(prefix="kqs-bench-"))
    print(f"{args.items} items per broker; each cell: median / p95 ms")
    print("| broker | claim | ack | `work -- true` per item | `true` alone |")
    print("|---|---:|---:|---:|---:|")
    alone = cmd_alone(min(args.items, 200))
    redis_proc = moto = rabbit = None
    try:
        for broker in wanted:
            if broker.startswith("redis"):
                if redis_proc is None:
                    redis_proc = RedisProcess(work / "redis")
                    redis_proc.start()
                client = redis_proc.client()
                client.flushall()
                make = redis_list if broker == "redis-list" else redis_stream
                queue = make(redis_proc.address, client)
            elif broker == "sqs":
                moto = MotoServer()
                moto.start()
                queue = sqs(moto.endpoint, moto.sqs(), name="bench")
            else:
                rabbit = RabbitMQProcess(work / "rabbitmq")
                rabbit.start()
                queue = await rabbitmq(rabbit.amqp_url(), name="bench")
            claims, acks, per_item = await measure(queue, args.items)
            await queue.close()
            print(f"| {broker} | {ms(claims)} | {ms(acks)} | {per_item * 1000:.1f} | "
                  f"{alone * 1000:.1f} |", flush=True)  # fmt: skip
    finally:
        if redis_proc is not None:
            redis_proc.stop()
        if moto is not None:
            moto.stop()
        if rabbit is not None:
            rabbit.close()


if __name__ == "__main__":
    asyncio.run(main())
