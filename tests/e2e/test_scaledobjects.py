"""ScaledObjects end to end: our scaler, KEDA's operator, KEDA's metrics adapter and
the HPA controller of kube-controller-manager scale a Deployment.

The Deployment's consumer takes nothing off the queue (a stand-in that only sleeps),
so the queue length a test sets alone decides the replicas. Each step waits until
the Deployment holds the replica count the prediction gives, then until our scaler
has answered several more reads for the ScaledObject, and checks that the count
held. The prediction is KEDA's and the HPA's arithmetic as their code has it:

- KEDA (pkg/scaling/executor/scale_scaledobjects.go): active (value above the
  activation target) at 0 replicas -> minReplicaCount, or 1; inactive -> 0 (or
  idleReplicaCount) once cooldownPeriod has passed since it was last active; the HPA
  it creates has minReplicas max(minReplicaCount, 1) and maxReplicas maxReplicaCount.
- The HPA: each sync's count comes from the HPA controller's own ReplicaCalculator
  (GetExternalPerPodMetricReplicas for ``AverageValue``, GetExternalMetricReplicas
  for ``Value``; tests/e2e/cluster/kube/cmd/hpa-replicas), clamped to
  [minReplicas, maxReplicas], sync after sync until it settles.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.brokers import RedisProcess, free_port
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.conftest import Scaler
from tests.e2e.test_scaledjobs import processed_items
from tests.frameworks.peers import Peer

pytestmark = pytest.mark.timeout(600)
TOLERANCE = 0.1  # the HPA controller's default --horizontal-pod-autoscaler-tolerance
KIND = "ScaledObject"
STEP = 120.0  # seconds a step may take: a scale-up of 4 Pods per 15 s, KEDA's polls


# ---- the prediction ------------------------------------------------------------------
def hpa_sync(cluster: Cluster, kind: str, total: float, target: float, replicas: int) -> int:
    """One HPA sync's replica count for an external ``kind`` (AverageValue or Value)
    metric, from the HPA controller's own ReplicaCalculator (cmd/hpa-replicas, built
    by scripts/e2e-cluster), with ``replicas`` current and all of them Ready."""
    request = {"type": kind, "usage": round(total * 1000), "target": round(target * 1000),
               "current": replicas, "ready": replicas, "tolerance": TOLERANCE}  # fmt: skip
    done = subprocess.run([str(cluster.bin / "hpa-replicas")], input=json.dumps(request) + "\n",
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    answer = json.loads(done.stdout)
    assert "error" not in answer, answer
    return int(answer["replicas"])


def hpa_settles(
    cluster: Cluster, kind: str, total: float, target: float, replicas: int, low: int, high: int
) -> int:
    """The count the HPA settles on with the queue held at ``total``: sync after sync,
    each clamped to [minReplicas, maxReplicas], until one changes nothing."""
    for _ in range(50):
        desired = max(low, min(high, hpa_sync(cluster, kind, total, target, replicas)))
        if desired == replicas:
            return replicas
        replicas = desired
    raise AssertionError(f"no settled count for {kind} {total}/{target}")


# ---- the objects ---------------------------------------------------------------------
def deploy(
    cluster: Cluster, scaler: Scaler, redis: RedisProcess, ns: str, *,
    spec: dict[str, Any] | None = None, trigger: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None, address: str = "", start: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """The ScaledObject example (examples/redis-list-scaledobject.yaml) in ``ns``, aimed
    at our scaler and the test's Redis, with KEDA polling every 2 s, a 5 s cooldown and
    no scale-down stabilization (so steps take seconds), plus ``spec``, ``trigger`` and
    ``metadata`` overrides; the list is ``so-jobs`` (the ScaledJob examples use
    "jobs" on the same Redis). ``address`` replaces the Redis address the Deployment
    gives (addressFromEnv); the Deployment starts at ``start`` replicas. Returns the
    ScaledObject as created."""
    from kubernetes import client

    kube.namespace(cluster, ns)
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    deployment, scaled = kube.example_documents("redis-list-scaledobject.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for env in container["env"]:
        if env["name"] == "REDIS_ADDRESS":
            env["value"] = address or redis.address
    deployment["metadata"]["namespace"] = ns
    deployment["spec"]["replicas"] = start
    client.AppsV1Api(cluster.api()).create_namespaced_deployment(ns, deployment)
    scaled["spec"].update({"pollingInterval": 2, "cooldownPeriod": 5, **(spec or {})})
    scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"] = {
        "stabilizationWindowSeconds": 0
    }
    (first,) = scaled["spec"]["triggers"]
    first.update(trigger or {})
    first["metadata"].update(
        {"scalerAddress": scaler.address, "listName": "so-jobs", **(metadata or {})}
    )
    kube.create(cluster, ns, scaled)
    scaled["metadata"]["namespace"] = ns
    scaled["deployment"] = deployment  # for explain(), which reads both from one file
    return scaled


def explain(scaler: Scaler, scaled: dict[str, Any], replicas: int, workdir: Path) -> Any:
    """``keda-queue-scaler explain`` on the ScaledObject and its Deployment, with the
    replicas the Deployment holds now: its JSON report."""
    docs = [scaled["deployment"], {k: v for k, v in scaled.items() if k != "deployment"}]
    manifest = workdir / f"{scaled['metadata']['namespace']}.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    secrets = workdir / "env"
    secrets.write_text(f"REDIS_PASSWORD={REDIS_PASSWORD}\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "keda-queue-scaler"), "explain", str(manifest),
         "--replicas", str(replicas), "--env-file", str(secrets), "--output", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def replicas(cluster: Cluster, ns: str, name: str) -> int:
    from kubernetes import client

    scale = client.AppsV1Api(cluster.api()).read_namespaced_deployment_scale(name, ns)
    return int(scale.spec.replicas or 0)


def ready_pods(cluster: Cluster, ns: str, name: str) -> int:
    """Pods of the Deployment that run (not being deleted) and are Ready."""
    count = 0
    for pod in cluster.core().list_namespaced_pod(ns, label_selector=f"app={name}").items:
        conditions = {c.type: c.status for c in (pod.status.conditions or [])}
        if pod.metadata.deletion_timestamp is None and conditions.get("Ready") == "True":
            count += 1
    return count


def hpa(cluster: Cluster, ns: str, name: str) -> Any:
    from kubernetes import client

    return client.AutoscalingV2Api(cluster.api()).read_namespaced_horizontal_pod_autoscaler(
        f"keda-hpa-{name}", ns
    )


def reads(scaler: Scaler, ns: str, name: str) -> float:
    """Calls our scaler answered for this ScaledObject (its own counter, any code)."""
    with urllib.request.urlopen(scaler.metrics, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "keda_queue_scaler_workload_calls_total"
                    and sample.labels.get("scaled_namespace") == ns
                    and sample.labels.get("scaled_name") == name):  # fmt: skip
                total += sample.value
    return total


def settles_at(
    cluster: Cluster, scaler: Scaler, ns: str, name: str, expected: int, *, more_reads: int = 6
) -> int:
    """Wait for the Deployment to hold ``expected`` replicas (all Ready), then for
    ``more_reads`` further reads of the ScaledObject, and return the count then."""

    def there() -> bool:
        cluster.check_alive()
        return replicas(cluster, ns, name) == expected == ready_pods(cluster, ns, name)

    wait_for(f"{ns}/{name} at {expected} replicas (now {replicas(cluster, ns, name)})",
             there, STEP)  # fmt: skip
    start = reads(scaler, ns, name)
    wait_for(f"{more_reads} more reads of {ns}/{name}",
             lambda: reads(scaler, ns, name) >= start + more_reads, STEP)  # fmt: skip
    return replicas(cluster, ns, name)


def set_length(r: Any, n: int, key: str = "so-jobs") -> None:
    r.delete(key)
    if n:
        r.rpush(key, *(f"item-{i}" for i in range(n)))


def explain_cluster(cluster: Cluster, scaler: Scaler, ns: str, name: str) -> Any:
    """``explain --from-cluster`` on the ScaledObject: its report (JSON)."""
    done = subprocess.run(
        [sys.executable, "-m", "scaler", "explain", "--from-cluster", f"{ns}/{name}",
         "--kubeconfig", str(cluster.kubeconfig), "--address", scaler.address,
         "--output", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the password came from the namespace's Secret
    return json.loads(done.stdout)


# ---- scenarios -----------------------------------------------------------------------
def test_average_value_scales_zero_to_n_to_zero(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess, tmp_path: Path
) -> None:
    """The example as written (AverageValue, listLength 3, activation 2, 0..5)."""
    ns = "e2e-so-average"
    r = redis_password_server.client()
    set_length(r, 0)
    so = deploy(cluster, scaler, redis_password_server, ns)
    name = so["metadata"]["name"]
    target, low, high = 3.0, 1, int(so["spec"]["maxReplicaCount"])
    wait_for("the HPA KEDA creates", lambda: hpa(cluster, ns, name), STEP)
    observed: list[tuple[int, int, int]] = []
    explained: list[int] = []
    current = 0
    # 2 items: not above activationListLength 2, KEDA keeps it at 0; then the HPA's
    # arithmetic from KEDA's 1 replica, up and down; then 0 items: KEDA, after cooldown
    for length in (2, 7, 20, 4, 0):
        set_length(r, length)
        before = current
        active = length > 2
        if not active:
            predicted = 0
        else:
            current = max(current, 1)  # KEDA: 0 -> 1 on activation
            predicted = hpa_settles(cluster, "AverageValue", length, target, current, low, high)
        current = settles_at(cluster, scaler, ns, name, predicted)
        observed.append((length, predicted, current))
        # the queue as it is now (our scaler's cache holds no older read), from before
        explained.append(explain(scaler, so, before, tmp_path)["settlesAt"])
        if length == 20:  # and from the cluster: the Deployment's replicas and env
            live = explain_cluster(cluster, scaler, ns, name)
            assert (live["replicas"], live["settlesAt"], live["hpaReplicas"]) == (5, 5, 5)
            assert live["metrics"][0]["value"] == 20
    print(f"\n{ns}: (items, predicted, observed) {observed}; explain said {explained}")
    assert [o for _, _, o in observed] == [p for _, p, _ in observed] == explained
    assert [p for _, p, _ in observed] == [0, 3, 5, 2, 0]
    activated = kube.events(cluster, ns, name, "KEDAScaleTargetActivated", kind=KIND)
    deactivated = kube.events(cluster, ns, name, "KEDAScaleTargetDeactivated", kind=KIND)
    assert activated
    assert deactivated


def test_value_metric_multiplies_the_replicas(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess, tmp_path: Path
) -> None:
    """``metricType: Value``: the HPA compares the whole queue with the target, not the
    queue per replica, so a queue nobody drains multiplies the replicas by value /
    target each sync, until maxReplicaCount or minReplicaCount stops it."""
    ns = "e2e-so-value"
    r = redis_password_server.client()
    so = deploy(cluster, scaler, redis_password_server, ns,
                spec={"minReplicaCount": 1, "maxReplicaCount": 6},
                trigger={"metricType": "Value"},
                metadata={"listName": "jobs-value", "listLength": "4"})  # fmt: skip
    name = so["metadata"]["name"]
    set_length(r, 0, "jobs-value")
    observed: list[tuple[int, int, int]] = []
    explained: list[int] = []
    current = settles_at(cluster, scaler, ns, name, 1)  # minReplicaCount
    for length in (8, 4, 2):
        set_length(r, length, "jobs-value")
        before = current
        predicted = hpa_settles(cluster, "Value", length, 4.0, current, 1, 6)
        current = settles_at(cluster, scaler, ns, name, predicted)
        observed.append((length, predicted, current))
        # the queue as it is now (our scaler's cache holds no older read), from before
        explained.append(explain(scaler, so, before, tmp_path)["settlesAt"])
    print(f"\n{ns}: (items, predicted, observed) {observed}; explain said {explained}")
    assert [o for _, _, o in observed] == [p for _, p, _ in observed] == explained
    # 8 items against a target of 4: 1 -> 2 -> 4 -> 6 (max); 4 items: ratio 1, held;
    # 2 items: ratio 0.5 halves the replicas each sync, 6 -> 3 -> 2 -> 1 (min)
    assert [p for _, p, _ in observed] == [6, 6, 1]
    (metric,) = hpa(cluster, ns, name).spec.metrics
    assert metric.external.target.type == "Value"


def test_min_idle_max_and_cooldown(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess, tmp_path: Path
) -> None:
    """idleReplicaCount 0 below minReplicaCount 2, maxReplicaCount 4: idle at 0, 2 as
    soon as one item waits (the HPA's minimum), 4 at most, back to idle only
    cooldownPeriod after KEDA last saw the trigger active."""
    ns = "e2e-so-idle"
    r = redis_password_server.client()
    so = deploy(cluster, scaler, redis_password_server, ns,
                spec={"minReplicaCount": 2, "maxReplicaCount": 4, "idleReplicaCount": 0,
                      "cooldownPeriod": 6},
                metadata={"listName": "jobs-idle", "listLength": "1",
                          "activationListLength": "0"})  # fmt: skip
    name = so["metadata"]["name"]
    set_length(r, 0, "jobs-idle")
    observed: list[tuple[int, int, int]] = []
    explained: list[int] = []
    current = 0
    for length in (0, 1, 10, 0):
        set_length(r, length, "jobs-idle")
        before = current
        if length == 0:
            predicted = 0  # idleReplicaCount
        else:
            current = max(current, 2)  # KEDA: idle -> minReplicaCount
            predicted = hpa_settles(cluster, "AverageValue", length, 1.0, current, 2, 4)
        current = settles_at(cluster, scaler, ns, name, predicted)
        observed.append((length, predicted, current))
        # the queue as it is now (our scaler's cache holds no older read), from before
        explained.append(explain(scaler, so, before, tmp_path)["settlesAt"])
    print(f"\n{ns}: (items, predicted, observed) {observed}; explain said {explained}")
    assert [o for _, _, o in observed] == [p for _, p, _ in observed] == [0, 2, 4, 0]
    assert explained == [0, 2, 4, 0]
    assert hpa(cluster, ns, name).spec.min_replicas == 2
    # the cooldown, from KEDA's own record: the scale to idle came at least
    # cooldownPeriod after the last time KEDA saw the trigger active
    last_active = kube.scaledobject(cluster, ns, name)["status"]["lastActiveTime"]
    (idle,) = [
        e for e in kube.events(cluster, ns, name, "KEDAScaleTargetDeactivated", kind=KIND)
    ][-1:]  # fmt: skip
    when = idle.event_time or idle.deprecated_last_timestamp
    waited = (when - _parse(last_active)).total_seconds()
    print(f"{ns}: to idle {waited:.1f} s after last active (cooldownPeriod 6 s)")
    assert waited >= 6 - 1  # lastActiveTime is kept to the second


def _parse(stamp: str) -> Any:
    import datetime

    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_broker_error_shows_on_the_scaledobject(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess
) -> None:
    """A Redis nobody listens on: KEDA's Warning event carries our error, which names
    the cause; the ScaledObject's Ready condition turns False; the HPA reports that it
    cannot read the metric; the Deployment keeps the replica it runs (KEDA does not
    scale on an error without a fallback; the HPA cannot)."""
    ns = "e2e-so-error"
    closed = f"127.0.0.1:{free_port()}"  # the Deployment's REDIS_ADDRESS: nobody there
    so = deploy(cluster, scaler, redis_password_server, ns, address=closed, start=1,
                spec={"minReplicaCount": 1})  # fmt: skip
    name = so["metadata"]["name"]

    def failed() -> list[Any]:
        return [e for e in kube.events(cluster, ns, name, "KEDAScalerFailed", kind=KIND)
                if closed in (e.note or "")]  # fmt: skip

    (event, *_) = wait_for("KEDA's KEDAScalerFailed event naming the address", failed, STEP)
    print(f"\n{ns}: event {event.type} {event.reason}: {event.note}")
    assert event.type == "Warning"
    assert "Unavailable" in event.note
    assert REDIS_PASSWORD not in event.note

    def ready_false() -> tuple[str, str, str] | None:
        found = kube.condition(cluster, ns, name, "Ready", plural="scaledobjects")
        return found if found and found[0] == "False" else None

    status, reason, message = wait_for("Ready False", ready_false, STEP)
    print(f"{ns}: Ready {status} {reason}: {message}")
    assert reason == "TriggerError"

    def hpa_cannot_read() -> Any:
        for c in hpa(cluster, ns, name).status.conditions or []:
            if c.type == "ScalingActive" and c.status == "False":
                return c
        return None

    scaling = wait_for("the HPA's ScalingActive False", hpa_cannot_read, STEP)
    print(f"{ns}: HPA ScalingActive {scaling.status} {scaling.reason}: {scaling.message}")
    assert scaling.reason == "FailedGetExternalMetric"
    assert settles_at(cluster, scaler, ns, name, 1) == 1


@dataclass(frozen=True)
class Worker:
    """A framework's own long-running worker, as a Deployment's container."""

    peer: str  # which peer enqueues (tests/frameworks/peers.py)
    queue: str  # the framework's queue name (queueName)
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


#: Each framework's worker on a queue of its own (the ScaledJob tests' queues stay
#: apart): RQ's and arq's are the ScaledJob examples' commands without ``--burst``.
WORKERS = {
    "rq": Worker("python", "so-rq", ["rq", "worker", "--url",
                 "redis://:$(REDIS_PASSWORD)@$(REDIS_ADDRESS)/0", "so-rq"]),
    "arq": Worker("arq", "so-arq", ["arq", "arq_worker.WorkerSettings"], {"ARQ_QUEUE": "so-arq"}),
    "celery": Worker("python", "so-celery", [
        "celery", "-A", "celery_app", "worker", "-Q", "so-celery", "--pool", "solo",
        "--without-gossip", "--without-mingle", "--without-heartbeat"],
        {"CELERY_QUEUE": "so-celery"}),
    "dramatiq": Worker("python", "so-dramatiq", [
        "dramatiq", "dramatiq_app", "--processes", "1", "--threads", "1", "-Q", "so-dramatiq"],
        {"DRAMATIQ_QUEUE": "so-dramatiq"}),
    "huey": Worker("python", "sohuey", ["huey_consumer", "huey_app.huey"],
                   {"HUEY_NAME": "sohuey"}),
    "bullmq": Worker("bullmq", "so-bullmq", ["node", "bullmq-worker.cjs"],
                     {"QUEUE_NAME": "so-bullmq", "KEEP_RUNNING": "1"}),
    "sidekiq": Worker("sidekiq", "so-sidekiq",
                      ["sidekiq", "-r", "./sidekiq_app.rb", "-q", "so-sidekiq", "-c", "1"]),
}  # fmt: skip


@pytest.mark.parametrize("framework", list(WORKERS))
def test_framework_worker_deployment_drains_the_queue(
    framework: str,
    cluster: Cluster,
    scaler: Scaler,
    redis_password_server: RedisProcess,
    peers: dict[str, Peer],
) -> None:
    """The framework's own long-running worker as a Deployment, scaled by a ScaledObject
    with ``queueFormat``: tasks the framework enqueued wake it from 0, are each done
    once, and KEDA returns it to 0 after the cooldown."""
    from kubernetes import client

    worker = WORKERS[framework]
    ns = kube.namespace(cluster, f"e2e-so-{framework}")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    name = f"{framework}-consumer"
    labels = {"app": name}
    env = [{"name": "REDIS_ADDRESS", "value": redis_password_server.address},
           {"name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}}},
           *({"name": k, "value": v} for k, v in worker.env.items())]  # fmt: skip
    container = {"name": "worker", "image": f"ghcr.io/example/{framework}-app:1.0.0",
                 "command": worker.command, "env": env}  # fmt: skip
    client.AppsV1Api(cluster.api()).create_namespaced_deployment(ns, {
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [container]}}},
    })  # fmt: skip
    trigger = {"type": "external", "metadata": {
        "scalerAddress": scaler.address, "scalerType": "redis", "queueFormat": framework,
        "queueName": worker.queue, "listLength": "4", "activationListLength": "0",
        "addressFromEnv": "REDIS_ADDRESS", "passwordFromEnv": "REDIS_PASSWORD"}}  # fmt: skip
    kube.create(cluster, ns, {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"name": name}, "pollingInterval": 2, "cooldownPeriod": 5,
                 "minReplicaCount": 0, "maxReplicaCount": 3,
                 "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                     "scaleDown": {"stabilizationWindowSeconds": 0}}}},
                 "triggers": [trigger]},
    })  # fmt: skip
    url = f"redis://:{REDIS_PASSWORD}@{redis_password_server.address}/0"
    peer = peers[worker.peer]
    assert peer.enqueue(framework, url, worker.queue, []) == 0, "the queue is not empty"
    items = 12
    peer.enqueue(framework, url, worker.queue, [f"item-{i}" for i in range(items)])
    done = re.compile(r"done (item-[0-9]+)")

    def drained_and_idle() -> bool:
        cluster.check_alive()
        return (
            peer.enqueue(framework, url, worker.queue, []) == 0
            and sum(processed_items(cluster, ns, done).values()) >= items
            and replicas(cluster, ns, name) == 0
            and ready_pods(cluster, ns, name) == 0
        )

    wait_for(f"{ns}: {items} tasks done and the Deployment back at 0", drained_and_idle, 300)
    counts = processed_items(cluster, ns, done)
    assert sorted(counts) == sorted(f"item-{i}" for i in range(items))
    assert set(counts.values()) == {1}, counts
    assert kube.events(cluster, ns, name, "KEDAScaleTargetActivated", kind=KIND)
    assert kube.events(cluster, ns, name, "KEDAScaleTargetDeactivated", kind=KIND)
    print(f"\n{ns}: {items} tasks done once each by {framework}'s worker; 0 -> 0 replicas")


def test_explain_hpa_arithmetic_matches_the_hpa_calculator(cluster: Cluster) -> None:
    """explain's per-metric count (scaler.keda.scaledobject.hpa_metric_replicas)
    against the HPA controller's ReplicaCalculator, on seeded random syncs: values
    with fractions, ratios at the tolerance's edges, some Pods not Ready."""
    import random

    from scaler.keda.scaledobject import hpa_metric_replicas

    rng = random.Random(20261203)
    cases = []
    for _ in range(3000):
        kind = rng.choice(("AverageValue", "Value"))
        target = rng.choice((1, 2, 3, 5, 10, 0.5, 2.5))
        current = rng.randint(1, 20)
        ready = rng.randint(1, current)
        edge = target * (current if kind == "AverageValue" else 1) * rng.choice((0.9, 1.1, 1.0))
        value = rng.choice((edge, rng.randint(0, 200) / rng.choice((1, 2, 4)), 0.0))
        cases.append((kind, round(value, 3), target, current, ready))
    lines = "".join(
        json.dumps({"type": k, "usage": round(v * 1000), "target": round(t * 1000),
                    "current": c, "ready": r, "tolerance": TOLERANCE}) + "\n"
        for k, v, t, c, r in cases
    )  # fmt: skip
    done = subprocess.run([str(cluster.bin / "hpa-replicas")], input=lines,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(theirs) == len(cases)
    wrong = [
        (case, answer["replicas"], hpa_metric_replicas(case[0], case[1], case[2], case[3], case[4]))
        for case, answer in zip(cases, theirs, strict=True)
        if answer["replicas"] != hpa_metric_replicas(case[0], case[1], case[2], case[3], case[4])
    ]
    assert wrong == []
    print(f"\n{len(cases)} HPA syncs: explain agrees with the HPA's ReplicaCalculator on each")
