"""End to end, through the real KEDA operator: example ScaledJobs, adjusted only in
their addresses, turn work pushed to real brokers into Jobs that drain it.

For every scenario the test asserts that KEDA created, poll by poll, exactly the
Jobs our model (explain's arithmetic) predicts from what KEDA read in that poll;
that every item was processed exactly once; and that Jobs stop once the queue is
empty."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import Scaler

pytestmark = pytest.mark.timeout(600)


def processed_items(cluster: Cluster, ns: str) -> collections.Counter[str]:
    """Items the workers handled: the default WORK_COMMAND (cat) prints each one."""
    assert cluster.node is not None
    counts: collections.Counter[str] = collections.Counter()
    for log in Path(cluster.node.logs).glob(f"{ns}_*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("item-"):
                counts[line.strip()] += 1
    return counts


def drained(cluster: Cluster, ns: str, name: str, queue_empty: Any, items: int) -> bool:
    cluster.check_alive()
    if not queue_empty():
        return False
    js = kube.jobs(cluster, ns, name)
    return (
        bool(js)
        and all(kube.finished(j) for j in js)
        and sum(processed_items(cluster, ns).values()) >= items
    )


def quiet_polls(cluster: Cluster, ns: str, name: str, after: int, count: int = 3) -> bool:
    """At least ``count`` more polls happened after poll number ``after``."""
    return len(kube.polls(cluster, ns, name)) >= after + count


def assert_scenario(cluster: Cluster, ns: str, doc: dict[str, Any], items: int) -> list[kube.Poll]:
    name = doc["metadata"]["name"]
    seen = kube.polls(cluster, ns, name)
    assert seen, "KEDA logged no poll"
    assert kube.mismatches(doc, seen) == []
    created = sum(p.created for p in seen)
    # Every Job KEDA created ran one Pod (history limits delete finished Jobs later).
    assert cluster.node is not None
    assert created == len(list(Path(cluster.node.logs).glob(f"{ns}_*.log")))
    counts = processed_items(cluster, ns)
    assert sorted(counts) == sorted(f"item-{i}" for i in range(items))
    assert set(counts.values()) == {1}, counts  # exactly once
    return seen


def test_redis_list_example(cluster: Cluster, scaler: Scaler, e2e_redis: RedisProcess) -> None:
    ns = kube.namespace(cluster, "e2e-redis-list")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    doc = kube.example("redis-list-scaledjob.yaml")
    doc["spec"]["triggers"][0]["metadata"]["scalerAddress"] = scaler.address
    kube.set_env(doc, REDIS_ADDRESS=e2e_redis.address)
    name = doc["metadata"]["name"]
    r = e2e_redis.client()
    r.delete("jobs", "jobs:processing")
    r.rpush("jobs", *(f"item-{i}" for i in range(7)))
    kube.create(cluster, ns, doc)

    def empty() -> bool:
        return r.llen("jobs") == 0 and r.llen("jobs:processing") == 0

    kube.settle("7 items drained", lambda: drained(cluster, ns, name, empty, 7))
    r.rpush("jobs", *(f"item-{i}" for i in range(7, 10)))  # a second burst
    kube.settle("10 items drained", lambda: drained(cluster, ns, name, empty, 10))
    after = len(kube.polls(cluster, ns, name))
    kube.settle("3 quiet polls", lambda: quiet_polls(cluster, ns, name, after))
    seen = assert_scenario(cluster, ns, doc, 10)
    assert sum(p.created for p in seen[after:]) == 0  # no Jobs once the queue is empty
    kube.delete_scaledjob(cluster, ns, name)


def _broken(cluster: Cluster, scaler: Scaler, ns: str, env: dict[str, str],
            metadata: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    doc = kube.example("redis-list-scaledjob.yaml")
    doc["metadata"]["name"] = f"broken-{ns}"
    doc["spec"]["pollingInterval"] = 2
    doc["spec"]["triggers"][0]["metadata"].update(scalerAddress=scaler.address, **metadata)
    kube.set_env(doc, **env)
    kube.create(cluster, ns, doc)
    return doc


@pytest.mark.parametrize(
    ("case", "metadata", "password", "needle"),
    [
        ("bad-metadata", {"listLength": "lots"}, REDIS_PASSWORD, "code = InvalidArgument"),
        ("refused-credentials", {}, "not-the-password", "refused our credentials"),
        ("broker-down", {}, REDIS_PASSWORD, "cannot reach Redis"),
    ],
)
def test_errors_users_can_see(
    cluster: Cluster, scaler: Scaler, e2e_redis: RedisProcess, case: str,
    metadata: dict[str, str], password: str, needle: str,
) -> None:  # fmt: skip
    """A failing trigger is a KEDAScalerFailed Warning event with our message and a
    Ready condition of False, and no Job is created: not a silent line in the log."""
    from tests.brokers import free_port

    ns = kube.namespace(cluster, f"e2e-{case}")
    kube.secret(cluster, ns, "redis-auth", {"password": password})
    e2e_redis.client().rpush("jobs", "item-x")  # work is waiting: a 0 would be a lie
    address = f"127.0.0.1:{free_port()}" if case == "broker-down" else e2e_redis.address
    doc = _broken(cluster, scaler, ns, {"REDIS_ADDRESS": address}, metadata)
    name = doc["metadata"]["name"]

    def warned() -> list[Any]:
        return [e for e in kube.events(cluster, ns, name, "KEDAScalerFailed") if needle in e.note]

    (event, *_) = kube.settle("a KEDAScalerFailed event with our message", warned)
    assert event.type == "Warning"
    if case == "bad-metadata":
        assert '"listLength"' in event.note
        assert '"lots"' in event.note
    assert password not in event.note

    def not_ready() -> tuple[str, str, str] | None:
        c = kube.condition(cluster, ns, name, "Ready")
        return c if c is not None and c[0] == "False" else None

    assert kube.settle("Ready False", not_ready)[1] == "TriggerError"
    assert kube.jobs(cluster, ns, name) == []
    kube.delete_scaledjob(cluster, ns, name)
    e2e_redis.client().delete("jobs")
