"""`explain --from-cluster --watch` beside the real KEDA, over a whole scenario.

explain reads the ScaledJob, resolves its trigger's ``passwordFromEnv`` through the
Job template's ``secretKeyRef``, counts the Jobs and Pods as KEDA's scale executor
does, calls the scaler, and predicts the poll. KEDA's operator logs each of its own
polls' inputs (every spec's value, running and pending Jobs) and the Jobs it set out
to create. Every explain poll whose inputs equal one of KEDA's must predict exactly
KEDA's decision, and the scenario must give such pairs in several states.

The workers hold their item for a while (WORK_COMMAND sleeps), so the world stays
still between the pushes: KEDA polls every 2 s, explain every 0.5 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import Scaler

pytestmark = pytest.mark.timeout(600)


def inputs(record: dict[str, Any]) -> tuple[tuple[float, ...], int, int]:
    values = tuple(v for t in record["triggers"] for s in t["specs"] for v in s["values"])
    return values, int(record["running"]), int(record["pending"])


def test_explain_from_cluster_predicts_each_of_kedas_polls(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess
) -> None:
    ns = kube.namespace(cluster, "e2e-explain")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    doc = kube.example("redis-list-scaledjob.yaml")
    name = doc["metadata"]["name"] = "explained"
    doc["spec"]["pollingInterval"] = 2
    doc["spec"]["maxReplicaCount"] = 4
    doc["spec"]["triggers"][0]["metadata"].update(scalerAddress=scaler.address, listName=name)
    kube.set_env(doc, REDIS_ADDRESS=redis_password_server.address, LIST_NAME=name,
                 WORK_COMMAND="sh -c 'sleep 30; cat'")  # fmt: skip
    r = redis_password_server.client()
    r.delete(name, f"{name}:processing")
    kube.create(cluster, ns, doc)
    watch = subprocess.Popen(
        [sys.executable, "-m", "scaler", "explain", "--from-cluster", f"{ns}/{name}",
         "--kubeconfig", str(cluster.kubeconfig), "--watch", "--interval", "0.5",
         "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        kube.settle("KEDA's first poll", lambda: kube.polls(cluster, ns, name))
        r.rpush(name, "a", "b")
        # Two Jobs, their Pods started and holding the two items: the world is still.
        kube.settle("2 Jobs holding 2 items", lambda: held(cluster, ns, name, r, 2, 0))
        seen = len(kube.polls(cluster, ns, name))
        kube.settle("2 polls of the still world",
                    lambda: len(kube.polls(cluster, ns, name)) >= seen + 2)  # fmt: skip
        r.rpush(name, "c", "d", "e", "f", "g")
        # maxReplicaCount 4: two more Jobs, holding two more items; three wait.
        kube.settle("4 Jobs holding 4 items", lambda: held(cluster, ns, name, r, 4, 3))
        seen = len(kube.polls(cluster, ns, name))
        kube.settle("2 polls of the still world",
                    lambda: len(kube.polls(cluster, ns, name)) >= seen + 2)  # fmt: skip
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=30)
        kube.delete_scaledjob(cluster, ns, name)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert records, err
    keda = {}
    for poll in kube.polls(cluster, ns, name):
        if poll.errors or poll.running < 0:
            continue
        key = (tuple(v for s in poll.specs for v in s.values), poll.running, poll.pending)
        keda.setdefault(key, set()).add(poll.decided)
    matched: dict[tuple[tuple[float, ...], int, int], int] = {}
    for record in records:
        key = inputs(record)
        assert not any(t["error"] for t in record["triggers"]), record["triggers"]
        if key in keda:
            assert keda[key] == {record["jobsToCreate"]}, (key, keda[key], record)
            matched[key] = record["jobsToCreate"]
    # The still worlds, and at least one poll where Jobs were to be created.
    assert ((0.0,), 2, 0) in matched, (matched, sorted(keda))
    assert ((3.0,), 4, 0) in matched, (matched, sorted(keda))
    assert any(jobs > 0 for jobs in matched.values()), (matched, sorted(keda))
    print(f"\nexplain polls {len(records)}, KEDA states {len(keda)}, matched {matched}")


def held(cluster: Cluster, ns: str, name: str, r: Any, jobs: int, waiting: int) -> bool:
    """``jobs`` Jobs running, none pending, each holding one item; ``waiting`` left."""
    cluster.check_alive()
    return (
        len([j for j in kube.jobs(cluster, ns, name) if not kube.finished(j)]) == jobs
        and r.llen(f"{name}:processing") == jobs
        and r.llen(name) == waiting
    )
