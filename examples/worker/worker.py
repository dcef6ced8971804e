"""A one-message worker for the example ScaledJobs: take one message, run the work
on it, acknowledge it only after the work succeeded, exit.

    python worker.py redis-list   # REDIS_ADDRESS, REDIS_PASSWORD, LIST_NAME
    python worker.py redis-stream # REDIS_ADDRESS, REDIS_PASSWORD, STREAM, CONSUMER_GROUP
    python worker.py sqs          # QUEUE_URL, AWS_REGION (+ AWS_ENDPOINT_URL), pod credentials
    python worker.py rabbitmq     # RABBITMQ_URL (amqp://user:pass@host:5672/vhost), QUEUE_NAME

The work is WORK_COMMAND (default: `cat`), run with the message body on stdin.
Exit codes: 0 = one message done and acknowledged, or nothing to do; 1 = the work
failed and the message was handed back for another Job; 2 = bad configuration.

How each broker keeps a message safe until success:
- redis-list: LMOVE the item to "<list>:processing" (atomic claim), LREM it after
  success; on failure move it back to the list.
- redis-stream: XREADGROUP one entry, XACK after success; on failure it stays
  pending for the group (XAUTOCLAIM can hand it to another consumer).
- sqs: ReceiveMessage (the message turns invisible), DeleteMessage after success;
  on failure set its visibility timeout to 0 so it is visible again at once.
- rabbitmq: basic.get without auto-ack, basic.ack after success, basic.nack with
  requeue on failure.
Uses the scaler image's own libraries (redis, aiobotocore, aiormq).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import sys
from collections.abc import Awaitable, Callable

Work = Callable[[bytes], Awaitable[bool]]


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        print(f"worker: set {name}", file=sys.stderr)
        raise SystemExit(2)
    return value


async def run_work(body: bytes) -> bool:
    command = shlex.split(os.environ.get("WORK_COMMAND", "cat"))
    proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE)
    await proc.communicate(body)
    return proc.returncode == 0


def _redis() -> object:
    from redis.asyncio import Redis

    host, _, port = env("REDIS_ADDRESS").rpartition(":")
    return Redis(host=host, port=int(port), password=os.environ.get("REDIS_PASSWORD") or None)


async def redis_list(work: Work) -> int:
    client: object = _redis()
    name = env("LIST_NAME")
    processing = f"{name}:processing"
    body = await client.lmove(name, processing, "LEFT", "RIGHT")  # type: ignore[attr-defined]
    try:
        if body is None:
            return 0
        if await work(body):
            await client.lrem(processing, 1, body)  # type: ignore[attr-defined]
            return 0
        async with client.pipeline(transaction=True) as pipe:  # type: ignore[attr-defined]
            await pipe.lrem(processing, 1, body).lpush(name, body).execute()
        return 1
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def redis_stream(work: Work) -> int:
    client: object = _redis()
    stream, group = env("STREAM"), env("CONSUMER_GROUP")
    consumer = os.environ.get("CONSUMER_NAME", socket.gethostname())
    try:
        reply = await client.xreadgroup(group, consumer, {stream: ">"}, count=1)  # type: ignore[attr-defined]
        if not reply:
            return 0
        entry_id, fields = reply[0][1][0]
        body = b"\n".join(b"%s=%s" % (k, v) for k, v in fields.items())
        if await work(body):
            await client.xack(stream, group, entry_id)  # type: ignore[attr-defined]
            return 0
        return 1  # stays pending for the group
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def sqs(work: Work) -> int:
    from aiobotocore.session import AioSession

    url = env("QUEUE_URL")
    args = {"region_name": env("AWS_REGION")}
    if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
        args["endpoint_url"] = endpoint
    async with AioSession().create_client("sqs", **args) as client:
        reply = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=2)
        messages = reply.get("Messages", [])
        if not messages:
            return 0
        message = messages[0]
        if await work(message["Body"].encode()):
            await client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return 0
        await client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        return 1


async def rabbitmq(work: Work) -> int:
    import aiormq

    connection = await aiormq.connect(env("RABBITMQ_URL"))
    try:
        channel = await connection.channel()
        message = await channel.basic_get(env("QUEUE_NAME"), no_ack=False)
        if message.delivery_tag is None:  # basic.get-empty
            return 0
        if await work(message.body):
            await channel.basic_ack(message.delivery_tag)
            return 0
        await channel.basic_nack(message.delivery_tag, requeue=True)
        return 1
    finally:
        await connection.close()


BROKERS = {"redis-list": redis_list, "redis-stream": redis_stream, "sqs": sqs, "rabbitmq": rabbitmq}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("broker", choices=sorted(BROKERS))
    args = parser.parse_args()
    sys.exit(asyncio.run(BROKERS[args.broker](run_work)))


if __name__ == "__main__":
    main()
