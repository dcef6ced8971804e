"""End to end for ``keda-queue-scaler work``: the real KEDA operator turns a Redis
list into Jobs from examples/work-redis-list-scaledjob.yaml, each Job's Pod runs
``work`` on one item, and Pods are killed (deleted: the node stand-in SIGKILLs
them) while they work. Every item completes, nothing is left claimed, and the Jobs'
conditions show each outcome (Complete, or Failed by the podFailurePolicy)."""

from __future__ import annotations

import asyncio
import collections
import random
import re
import threading

import pytest

from scaler.worker import enqueue
from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import Scaler
from tests.e2e.test_scaledjobs import processed_items

pytestmark = pytest.mark.timeout(900)

ITEMS, KILLS = 50, 6
DONE = re.compile(r"done (item-[0-9]+)")


def test_work_drains_every_item_while_pods_are_killed(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess
) -> None:
    ns = kube.namespace(cluster, "e2e-work")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    doc = kube.example("work-redis-list-scaledjob.yaml")
    name = doc["metadata"]["name"]
    doc["spec"]["triggers"][0]["metadata"]["scalerAddress"] = scaler.address
    kube.set_env(doc, REDIS_ADDRESS=redis_password_server.address)
    (container,) = doc["spec"]["jobTargetRef"]["template"]["spec"]["containers"]
    command = container["command"]
    command[command.index("--lease") + 1] = "4"  # killed Pods' items return within seconds
    # Near the end few Pods run, so the killer can hit one item's Pods again and again: an
    # item claimed by more than --max-attempts dead workers is dead-lettered (by design).
    # KILLS + 1 attempts makes that impossible here, so every item must be done.
    command[command.index("--max-attempts") + 1] = str(KILLS + 1)
    # the app: take a moment (so that kills land mid-item), then say it is done
    command[command.index("--") + 1 :] = ["sh", "-c", 'sleep 1.5; echo "done $(cat)"']
    # every Job stays, for its condition (KEDA keeps 5 successful ones otherwise)
    doc["spec"]["successfulJobsHistoryLimit"] = doc["spec"]["failedJobsHistoryLimit"] = 200
    r = redis_password_server.client()
    r.delete("jobs", "jobs:dead")
    meta = {"scalerType": "redis", "address": redis_password_server.address,
            "listName": "jobs", "password": REDIS_PASSWORD}  # fmt: skip
    asyncio.run(enqueue(meta, [f"item-{i}".encode() for i in range(ITEMS)]))

    killed: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        """Delete a running Pod every 2-4 s, up to KILLS of them."""
        core, rng = cluster.core(), random.Random(25)
        while not stop.wait(rng.uniform(2, 4)) and len(killed) < KILLS:
            running = [p.metadata.name for p in core.list_namespaced_pod(ns).items
                       if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]  # fmt: skip
            if running:
                victim = rng.choice(running)
                core.delete_namespaced_pod(victim, ns)
                killed.append(victim)

    thread = threading.Thread(target=killer, daemon=True)
    kube.create(cluster, ns, doc)
    thread.start()

    def claims() -> int:
        return sum(1 for _ in r.scan_iter(match="jobs:kqs:claim:*"))

    def drained() -> bool:
        cluster.check_alive()
        if r.llen("jobs") or claims():
            return False
        js = kube.jobs(cluster, ns, name)
        return bool(js) and all(kube.finished(j) for j in js) and \
            set(processed_items(cluster, ns, DONE)) >= {f"item-{i}" for i in range(ITEMS)}  # fmt: skip

    try:
        kube.settle(f"{ITEMS} items done", drained, timeout=600)
    except TimeoutError:
        unfinished = [j.metadata.name for j in kube.jobs(cluster, ns, name) if not kube.finished(j)]
        pods = [(p.metadata.name, p.status.phase, p.metadata.deletion_timestamp is not None)
                for p in cluster.core().list_namespaced_pod(ns).items]  # fmt: skip
        raise AssertionError(
            f"waiting {r.llen('jobs')}, claimed {claims()}, done "
            f"{len(processed_items(cluster, ns, DONE))}, dead {r.llen('jobs:dead')}, "
            f"killed {killed}, unfinished Jobs {unfinished}, "
            f"Pods {pods}"
        ) from None
    finally:
        stop.set()
        thread.join(10)
    done = processed_items(cluster, ns, DONE)
    outcomes: collections.Counter[str] = collections.Counter()
    for job in kube.jobs(cluster, ns, name):
        for c in job.status.conditions or []:
            if c.type in ("Complete", "Failed") and c.status == "True":
                code = re.search(r"exit code (\d+)", c.message or "")
                outcomes[
                    f"{c.type} {c.reason or ''} {'exit ' + code[1] if code else ''}".strip()
                ] += 1
    duplicates = sum(done.values()) - len(done)
    print(f"\n[e2e work] {ITEMS} items, {len(killed)} Pods killed: {len(done)} done, "
          f"{duplicates} duplicates, {r.llen('jobs')} waiting, {claims()} claimed, "
          f"{r.llen('jobs:dead')} dead-lettered; Jobs: "
          + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))  # fmt: skip
    assert len(done) == ITEMS
    assert duplicates <= len(killed)
    assert r.llen("jobs:dead") == 0
    assert killed, "no Pod was running to be killed"
    # every Job ended as its exit code says: done, or failed by a podFailurePolicy rule
    # (3: another Job had taken the item), or out of retries after its Pods were killed
    allowed = re.compile(r"Complete CompletionsReached|Failed PodFailurePolicy exit 3|"
                         r"Failed BackoffLimitExceeded")  # fmt: skip
    assert all(allowed.fullmatch(k) for k in outcomes), outcomes
    assert outcomes["Complete CompletionsReached"] >= ITEMS - len(killed)
    kube.delete_scaledjob(cluster, ns, name)
