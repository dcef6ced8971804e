"""`explain --output json` on a ScaledJob with minReplicaCount, two triggers and a
fractional target, against real brokers: its Jobs must be what KEDA's own code
(cmd/jobmodel) creates from the same answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiormq
import pytest
import yaml

from tests.brokers import RabbitMQProcess, RedisProcess
from tests.conftest import ServerFactory, run_cli
from tests.keda.test_jobmodel_parity import BASE, keda

pytestmark = [pytest.mark.keda, pytest.mark.usefixtures("keda_tools")]


def manifest(address: str, redis: RedisProcess, rabbitmq: RabbitMQProcess, strategy: str) -> Any:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": "two-triggers", "namespace": "work"},
        "spec": {
            "minReplicaCount": 2,
            "maxReplicaCount": 10,
            "scalingStrategy": {"strategy": strategy, "multipleScalersCalculation": "sum"},
            "jobTargetRef": {"template": {"spec": {"containers": [
                {"name": "w", "image": "w", "env": [{"name": "RMQ", "value": rabbitmq.amqp_url()}]},
            ]}}},
            "triggers": [
                {"type": "external", "metadata": {
                    "scalerAddress": address, "scalerType": "redis",
                    "address": redis.address, "listName": "jobs", "listLength": "2"}},
                {"type": "external", "metadata": {
                    "scalerAddress": address, "scalerType": "rabbitmq", "hostFromEnv": "RMQ",
                    "queueName": "explain-q", "mode": "QueueLength", "value": "2.5"}},
                {"type": "redis", "metadata": {"address": redis.address, "listName": "jobs"}},
            ],
        },
    }  # fmt: skip


def scenario(report: dict[str, Any], strategy: str, running: int, pending: int) -> dict[str, Any]:
    """The poll explain saw, as a jobmodel scenario: its answers, the manifest's
    settings, and Jobs with that many running and pending."""
    triggers = []
    for t in report["triggers"]:
        if not t["servedByThisScaler"]:
            continue  # KEDA evaluates built-in triggers itself
        specs = [
            {"name": s["metricName"], "targetSize": 0, "targetSizeFloat": s["target"],
             "values": [{"int": 0, "float": v} for v in s["values"]],
             "active": s["active"], "error": bool(s["error"])}
            for s in t["specs"]
        ]  # fmt: skip
        triggers.append({"specError": bool(t["error"]) and not specs, "specs": specs})
    started = {"conditions": {}, "pods": [{"phase": "Running", "conditions": {}}]}
    waiting = {"conditions": {}, "pods": [{"phase": "Pending", "conditions": {}}]}
    return {
        **BASE, "id": 0, "minReplicaCount": 2, "maxReplicaCount": 10, "strategy": strategy,
        "multipleScalersCalculation": "sum", "triggers": triggers,
        "jobs": [started] * (running - pending) + [waiting] * pending,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "running", "pending"),
    [("default", 3, 1), ("accurate", 0, 0), ("accurate", 6, 2), ("eager", 1, 1)],
)
async def test_explain_gives_kedas_numbers(
    start_server: ServerFactory,
    redis_db: RedisProcess,
    rabbitmq: RabbitMQProcess,
    tmp_path: Path,
    strategy: str,
    running: int,
    pending: int,
) -> None:
    redis_db.client().rpush("jobs", *range(7))
    connection = await aiormq.connect(rabbitmq.amqp_url())
    channel = await connection.channel()
    await channel.queue_delete("explain-q")
    await channel.queue_declare("explain-q")
    for i in range(6):
        await channel.basic_publish(f"m{i}".encode(), routing_key="explain-q")
    try:
        async with start_server() as s:
            path = tmp_path / "sj.yaml"
            path.write_text(yaml.safe_dump(manifest(s.address, redis_db, rabbitmq, strategy)))
            code, out, err = await run_cli(
                "explain", str(path), "--output", "json",
                "--running", str(running), "--pending", str(pending),
            )  # fmt: skip
    finally:
        await channel.queue_delete("explain-q")
        await connection.close()
    assert code == 0, err
    report = json.loads(out)
    values = [t["value"] for t in report["triggers"]]
    assert values == [7, 6, None]  # the brokers' counts; the built-in trigger is KEDA's
    assert [t["target"] for t in report["triggers"]][:2] == [2, 2.5]
    assert report["triggers"][2]["servedByThisScaler"] is False
    (theirs,) = keda([scenario(report, strategy, running, pending)])
    assert report["jobsToCreate"] == theirs["created"]
    assert report["active"] is theirs["active"]
    assert (report["minReplicaCount"], report["maxReplicaCount"]) == (
        theirs["minReplicaCount"],
        theirs["maxReplicaCount"],
    )
