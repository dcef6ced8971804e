"""`explain --from-cluster --watch` beside the real KEDA, over a whole scenario.

explain reads the ScaledJob, resolves its trigger's ``passwordFromEnv`` through the
Job template's ``secretKeyRef``, counts the Jobs and Pods as KEDA's scale executor
does, calls the scaler, and predicts the poll. KEDA's operator logs each of its own
polls' inputs (every spec's value, running and pending Jobs) and the Jobs it set out
to create. Every explain poll whose inputs equal one of KEDA's must predict exactly
KEDA's decision, and the scenario must give such pairs in several states.

The workers hold their item for a while (WORK_COMMAND sleeps), so the world stays
still after each burst: KEDA polls every 2 s, explain every 0.5 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from typing import Any

import pytest

from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import Scaler

pytestmark = pytest.mark.timeout(600)


def holding(r: Any, key: str, count: int) -> bool:
    return bool(r.llen(key) >= count)


def polls_at_least(cluster: Cluster, ns: str, name: str, count: int) -> bool:
    return len(kube.polls(cluster, ns, name)) >= count


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
        # Two items, then five more with maxReplicaCount 4: 2, then 4 items held.
        for burst, held in ((["a", "b"], 2), (["c", "d", "e", "f", "g"], 4)):
            r.rpush(name, *burst)
            # Jobs are created, pend, start and take their items; the world then stays
            # still while they work (whether KEDA made extra Jobs in the race between a
            # Pod running and its worker popping is KEDA's business: explain must
            # predict it all the same).
            kube.settle(f"{held} items held", partial(holding, r, f"{name}:processing", held))
            polled = partial(
                polls_at_least, cluster, ns, name, len(kube.polls(cluster, ns, name)) + 3
            )
            kube.settle("3 more polls", polled)
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
    # Several states of the scenario, with Jobs running and with Jobs to create.
    assert len(matched) >= 3, (matched, sorted(keda))
    assert any(running > 0 for _, running, _ in matched), (matched, sorted(keda))
    assert any(jobs > 0 for jobs in matched.values()), (matched, sorted(keda))
    print(f"\nexplain polls {len(records)}, KEDA states {len(keda)}, matched {matched}")


def test_explain_reads_with_the_users_own_permissions(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess, tmp_path: Any
) -> None:
    """A user who may read ScaledJobs, Jobs and Pods but not Secrets: explain names the
    Secret it may not read and still counts the Jobs; the value given with --env-file
    (as the warning suggests) completes the trigger."""
    from kubernetes import client

    ns = kube.namespace(cluster, "e2e-explain-viewer")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    doc = kube.example("redis-list-scaledjob.yaml")
    name = doc["metadata"]["name"] = "viewed"
    doc["spec"]["triggers"][0]["metadata"].update(scalerAddress=scaler.address, listName=name)
    kube.set_env(doc, REDIS_ADDRESS=redis_password_server.address, LIST_NAME=name)
    redis_password_server.client().delete(name)
    redis_password_server.client().rpush(name, "x", "y")
    kube.create(cluster, ns, doc)
    core = cluster.core()
    core.create_namespaced_service_account(ns, {"metadata": {"name": "viewer"}})
    client.RbacAuthorizationV1Api(cluster.api()).create_namespaced_role(ns, {
        "metadata": {"name": "viewer"},
        "rules": [
            {"apiGroups": ["keda.sh"], "resources": ["scaledjobs"], "verbs": ["get"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        ],
    })  # fmt: skip
    client.RbacAuthorizationV1Api(cluster.api()).create_namespaced_role_binding(ns, {
        "metadata": {"name": "viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        "viewer", ns, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    kubeconfig = cluster.write_kubeconfig(
        tmp_path / "viewer.kubeconfig", cluster.pki.client_cert, cluster.pki.client_key,
        token=token,
    )  # fmt: skip
    base = [sys.executable, "-m", "scaler", "explain", "--from-cluster", f"{ns}/{name}",
            "--kubeconfig", str(kubeconfig), "--output", "json"]  # fmt: skip
    try:
        denied = subprocess.run(base, capture_output=True, text=True, timeout=120)
        assert f"Secret {ns}/redis-auth: forbidden" in denied.stderr, denied.stderr
        # Jobs and Pods were listed (a refusal there exits 2); only the trigger failed.
        assert denied.returncode == 1, denied.stderr
        record = json.loads(denied.stdout)
        assert record["triggers"][0]["error"], record  # no password: Redis refuses us
        secrets = tmp_path / "secrets.env"
        secrets.write_text(f"REDIS_PASSWORD={REDIS_PASSWORD}\n")
        given = subprocess.run(
            [*base, "--env-file", str(secrets)], capture_output=True, text=True, timeout=120
        )
        assert given.returncode == 0, given.stderr
        record = json.loads(given.stdout)
        assert record["triggers"][0]["error"] is None, record
        assert record["triggers"][0]["value"] >= 0
    finally:
        kube.delete_scaledjob(cluster, ns, name)
