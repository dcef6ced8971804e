"""examples/worker/worker.py on real brokers: one message per run, acknowledged only
after the work succeeds, handed back when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiormq
import pytest

from tests.brokers import MotoServer, RabbitMQProcess, RedisProcess

WORKER = Path(__file__).parents[2] / "examples" / "worker" / "worker.py"


def run(broker: str, env: dict[str, str], *, succeed: bool) -> subprocess.CompletedProcess[str]:
    command = "cat" if succeed else "false"
    return subprocess.run(
        [sys.executable, str(WORKER), broker],
        env={**os.environ, **env, "WORK_COMMAND": command},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_redis_list(redis_db: RedisProcess) -> None:
    client = redis_db.client()
    client.rpush("jobs", "a", "b")
    env = {"REDIS_ADDRESS": redis_db.address, "LIST_NAME": "jobs"}
    done = run("redis-list", env, succeed=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a"  # the work saw the message
    assert client.lrange("jobs", 0, -1) == [b"b"]
    assert client.llen("jobs:processing") == 0
    failed = run("redis-list", env, succeed=False)
    assert failed.returncode == 1
    assert client.lrange("jobs", 0, -1) == [b"b"]  # handed back
    assert client.llen("jobs:processing") == 0
    client.delete("jobs")
    assert run("redis-list", env, succeed=True).returncode == 0  # nothing to do


def test_redis_stream(redis_db: RedisProcess) -> None:
    client = redis_db.client()
    client.xadd("orders", {"n": "1"})
    client.xgroup_create("orders", "workers", id="0")
    env = {"REDIS_ADDRESS": redis_db.address, "STREAM": "orders", "CONSUMER_GROUP": "workers"}
    failed = run("redis-stream", env, succeed=False)
    assert failed.returncode == 1
    assert client.xpending("orders", "workers")["pending"] == 1  # kept for the group
    client.xadd("orders", {"n": "2"})
    done = run("redis-stream", env, succeed=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "n=2"
    assert client.xpending("orders", "workers")["pending"] == 1  # only the failed one


def test_sqs(moto: MotoServer) -> None:
    sqs: Any = moto.sqs()
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    env = {
        "QUEUE_URL": url, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_ACCESS_KEY_ID": "worker", "AWS_SECRET_ACCESS_KEY": "worker",
    }  # fmt: skip
    failed = run("sqs", env, succeed=False)
    assert failed.returncode == 1
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"  # visible again at once
    done = run("sqs", env, succeed=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello"
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        attrs["ApproximateNumberOfMessages"],
        attrs["ApproximateNumberOfMessagesNotVisible"],
    ) == ("0", "0")


@pytest.mark.parametrize("succeed", [True, False])
async def test_rabbitmq(rabbitmq: RabbitMQProcess, succeed: bool) -> None:
    connection = await aiormq.connect(rabbitmq.amqp_url())
    channel = await connection.channel()
    queue = f"worker-{succeed}"
    await channel.queue_declare(queue)
    await channel.basic_publish(b"payload", routing_key=queue)
    try:
        env = {"RABBITMQ_URL": rabbitmq.amqp_url(), "QUEUE_NAME": queue}
        done = run("rabbitmq", env, succeed=succeed)
        assert done.returncode == (0 if succeed else 1), done.stderr
        left = (await channel.queue_declare(queue, passive=True)).message_count
        assert left == (0 if succeed else 1)  # acked, or requeued
    finally:
        await channel.queue_delete(queue)
        await connection.close()
