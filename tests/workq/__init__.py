"""Queues for the worker's tests (``keda-queue-scaler work``), one per broker, each
counted through the broker's own API: what waits, what is held by a worker, and
what was dead-lettered. Shared by tests/integration/test_work.py, the chaos test
and the worker bench."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ROOT_ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@dataclass
class WorkQueue:
    """One queue on a real broker, with its trigger metadata."""

    broker: str
    name: str
    meta: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    _redis: Any = None
    _sqs: Any = None
    _amqp: Any = None

    def meta_args(self) -> list[str]:
        out: list[str] = []
        for k, v in self.meta.items():
            out += ["--meta", f"{k}={v}"]
        return out

    # -- counts, from the broker's own API ---------------------------------
    async def ready(self) -> int:
        if self.broker == "redis-list":
            return int(self._redis.llen(self.name))
        if self.broker == "redis-stream":
            groups = self._redis.xinfo_groups(self.name)
            return int(next(g["lag"] for g in groups if g["name"] == b"work"))
        if self.broker == "sqs":
            return self._sqs_attr("ApproximateNumberOfMessages", self.url)
        channel = await self._channel()
        return int((await channel.queue_declare(self.name, passive=True)).message_count)

    async def held(self) -> int:
        """Items claimed and not settled (RabbitMQ: none once every worker's connection
        is closed, which the broker turns into requeues; only then is this asked)."""
        if self.broker == "redis-list":
            return sum(1 for _ in self._redis.scan_iter(match=f"{self.name}:kqs:claim:*"))
        if self.broker == "redis-stream":
            return int(self._redis.xpending(self.name, "work")["pending"])
        if self.broker == "sqs":
            return self._sqs_attr("ApproximateNumberOfMessagesNotVisible", self.url)
        return 0

    async def dead(self) -> list[bytes]:
        if self.broker == "redis-list":  # the enqueue helper's JSON, as docs/worker.md shows it
            return [json.loads(raw)["body"].encode() for raw in
                    self._redis.lrange(f"{self.name}:dead", 0, -1)]  # fmt: skip
        if self.broker == "redis-stream":
            return [f[b"payload"] for _, f in self._redis.xrange(f"{self.name}:dead")]
        if self.broker == "sqs":
            out = []
            while True:
                got = self._sqs.receive_message(QueueUrl=self.dead_url, MaxNumberOfMessages=10,
                                                VisibilityTimeout=600).get("Messages", [])  # fmt: skip
                if not got:
                    return out
                out += [m["Body"].encode() for m in got]
        channel = await self._channel()
        out = []
        while True:
            message = await channel.basic_get(f"{self.name}-dead", no_ack=True)
            if message.delivery_tag is None:
                return out
            out.append(message.body)

    # -- plumbing ------------------------------------------------------------
    url: str = ""
    dead_url: str = ""
    amqp_url: str = ""

    def _sqs_attr(self, name: str, url: str) -> int:
        got = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])
        return int(got["Attributes"][name])

    async def _channel(self) -> Any:
        import aiormq

        if self._amqp is None:
            self._amqp = await aiormq.connect(self.amqp_url)
        return await self._amqp.channel()

    async def close(self) -> None:
        if self._amqp is not None:
            await self._amqp.close()


def redis_list(address: str, client: Any, name: str = "jobs") -> WorkQueue:
    meta = {"scalerType": "redis", "address": address, "listName": name}
    return WorkQueue("redis-list", name, meta, _redis=client)


def redis_stream(address: str, client: Any, name: str = "events") -> WorkQueue:
    client.xgroup_create(name, "work", id="0", mkstream=True)
    meta = {"scalerType": "redis-streams", "address": address, "stream": name,
            "consumerGroup": "work"}  # fmt: skip
    return WorkQueue("redis-stream", name, meta, _redis=client)


def sqs(endpoint: str, client: Any, name: str = "jobs") -> WorkQueue:
    dead = client.create_queue(QueueName=f"{name}-dead")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": 1000}
    url = client.create_queue(QueueName=name,
                              Attributes={"RedrivePolicy": json.dumps(policy)})["QueueUrl"]  # fmt: skip
    meta = {"scalerType": "aws-sqs-queue", "queueURL": url, "awsRegion": "us-east-1",
            "awsEndpoint": endpoint, "awsAccessKeyIDFromEnv": "TEST_KEY_ID",
            "awsSecretAccessKeyFromEnv": "TEST_SECRET"}  # fmt: skip
    env = {"TEST_KEY_ID": "testing", "TEST_SECRET": "testing"}
    return WorkQueue("sqs", name, meta, env=env, _sqs=client, url=url, dead_url=dead)


async def rabbitmq(url: str, name: str = "jobs") -> WorkQueue:
    import aiormq

    connection = await aiormq.connect(url)
    channel = await connection.channel()
    await channel.queue_declare(f"{name}-dead", durable=True)
    await channel.queue_declare(name, durable=True, arguments={
        "x-queue-type": "quorum",  # counts deliveries: an exact attempt after a worker dies
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{name}-dead"})  # fmt: skip
    meta = {"scalerType": "rabbitmq", "hostFromEnv": "RABBIT_URL", "queueName": name,
            "mode": "QueueLength", "value": "1"}  # fmt: skip
    queue = WorkQueue("rabbitmq", name, meta, env={"RABBIT_URL": url}, _amqp=connection)
    queue.amqp_url = url
    return queue


async def open_queue(request: Any, broker: str, name: str) -> WorkQueue:
    """A fresh queue on ``broker``, from the session's broker fixtures (pytest's
    ``request``); SQS and RabbitMQ names get a random suffix, as those brokers keep
    queues between tests."""
    if broker.startswith("redis"):
        server = request.getfixturevalue("redis_db")
        make = redis_list if broker == "redis-list" else redis_stream
        return make(server.address, server.client())
    if broker == "sqs":
        moto = request.getfixturevalue("moto")
        return sqs(moto.endpoint, moto.sqs(), name=f"{name}-{os.urandom(3).hex()}")
    process = request.getfixturevalue("rabbitmq")
    return await rabbitmq(process.amqp_url(), name=f"{name}-{os.urandom(3).hex()}")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scaler", *args]


async def run(queue: WorkQueue, args: Sequence[str], *, stdin: bytes = b"",
              timeout: float = 120) -> tuple[int, str]:  # fmt: skip
    """Run one ``keda-queue-scaler`` command against ``queue``: (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *cli(args[0], *queue.meta_args(), *args[1:]), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**ROOT_ENV, **queue.env},
    )  # fmt: skip
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace") + out.decode(errors="replace")


async def enqueue(queue: WorkQueue, payloads: Sequence[bytes]) -> None:
    code, text = await run(queue, ["enqueue"], stdin=b"".join(p + b"\n" for p in payloads))
    assert code == 0, text
