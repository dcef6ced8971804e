"""End to end for the task frameworks: tasks enqueued by RQ, arq and BullMQ
themselves become Jobs created by the real KEDA operator from our ``queueFormat``
counts, each Job runs the framework's own worker until the queue is empty, and every
task completes exactly once; ``explain`` predicts each of KEDA's polls.

Celery is not here: its worker has no mode that exits once the queue is empty, so it
cannot end a Kubernetes Job (docs/frameworks.md)."""

from __future__ import annotations

import re

import pytest

from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import Scaler
from tests.e2e.test_scaledjobs import run_bursts
from tests.frameworks.peers import Peer

pytestmark = pytest.mark.timeout(600)

PEER = {"rq": "python", "arq": "arq", "bullmq": "bullmq"}


@pytest.mark.parametrize("framework", list(PEER))
def test_framework_example(
    framework: str,
    cluster: Cluster,
    scaler: Scaler,
    redis_password_server: RedisProcess,
    peers: dict[str, Peer],
) -> None:
    ns = kube.namespace(cluster, f"e2e-{framework}")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    doc = kube.example(f"{framework}-scaledjob.yaml")
    trigger = doc["spec"]["triggers"][0]["metadata"]
    trigger["scalerAddress"] = scaler.address
    kube.set_env(doc, REDIS_ADDRESS=redis_password_server.address)
    url = f"redis://:{REDIS_PASSWORD}@{redis_password_server.address}/0"
    peer, queue = peers[PEER[framework]], trigger["queueName"]
    assert peer.enqueue(framework, url, queue, []) == 0, "the queue is not empty at the start"

    def push(ids: range) -> None:
        peer.enqueue(framework, url, queue, [f"item-{i}" for i in ids])

    def empty() -> bool:
        return peer.enqueue(framework, url, queue, []) == 0

    # the task prints "done <item>" (examples/frameworks/); the frameworks' own job logs
    # name the item too
    run_bursts(cluster, ns, doc, push, empty, re.compile(r"done (item-[0-9]+)"))
