"""``serve --kubernetes`` through the real KEDA operator, on the RBAC API server, with
the permissions the chart grants (not an administrator's):

- a ScaledJob moved from ``type: redis`` with a TriggerAuthentication (the example,
  adjusted only in its addresses) scales and drains;
- a rotated Secret is picked up without a restart;
- the Job outcome metrics count what the API server says happened;
- the chart's ServiceAccount reads what the scaler needs and is refused the rest.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.brokers import RedisProcess
from tests.e2e import kube
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.conftest import Scaler, start_scaler
from tests.e2e.test_scaledjobs import drained, processed_items, run_bursts

pytestmark = pytest.mark.timeout(600)
CHART = Path(__file__).parents[2] / "charts" / "keda-queue-scaler"
RELEASE, SYSTEM = "kqs-kube", "kqs-system"
PASSWORD_1, PASSWORD_2 = "first-password", "second-password"


def helm(cluster: Cluster, workdir: Path, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(workdir),
           "HELM_CONFIG_HOME": str(workdir), "HELM_DATA_HOME": str(workdir)}  # fmt: skip
    done = subprocess.run([os.environ.get("KQS_HELM") or "helm", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def service_account_kubeconfig(cluster: Cluster, ns: str, name: str, path: Path) -> Path:
    token = (
        cluster.core()
        .create_namespaced_service_account_token(name, ns, {"spec": {"expirationSeconds": 7200}})
        .status.token
    )
    return cluster.write_kubeconfig(path, cluster.pki.client_cert, cluster.pki.client_key,
                                    token=token)  # fmt: skip


def install(cluster: Cluster, workdir: Path, release: str, ns: str, *values: str) -> str:
    """helm install the chart with kubernetes.enabled; the ServiceAccount's name."""
    kube.namespace(cluster, ns, exist_ok=True)
    helm(cluster, workdir, "install", release, str(CHART), "--namespace", ns,
         "--set", "kubernetes.enabled=true", *values)  # fmt: skip
    manifest = yaml.safe_load_all(helm(cluster, workdir, "get", "manifest", release, "-n", ns))
    (account,) = [d["metadata"]["name"] for d in manifest if d and d["kind"] == "ServiceAccount"]
    return str(account)


@pytest.fixture(scope="module")
def kube_scaler(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scaler]:
    """Our scaler with --kubernetes, signed in as the chart's ServiceAccount (the chart
    installed for real, all namespaces: its ClusterRoles)."""
    workdir = tmp_path_factory.mktemp("kube-scaler")
    account = install(cluster, workdir, RELEASE, SYSTEM)
    kubeconfig = service_account_kubeconfig(cluster, SYSTEM, account, workdir / "sa.kubeconfig")
    scaler = start_scaler(
        workdir, "--kubeconfig", str(kubeconfig),
        values=("--set", "kubernetes.enabled=true", "--set", "kubernetes.kedaNamespace=keda",
                "--set", "config.logLevel=DEBUG"),
    )  # fmt: skip
    try:
        # The chart's RBAC is enough for every watch: each one lists and stays healthy.
        def all_healthy() -> list[str] | None:
            text = scrape(scaler)
            states = re.findall(r'kubernetes_watch_healthy\{watch="([^"]+)"\} (\S+)', text)
            ok = [w for w, v in states if float(v) == 1]
            return ok if states and len(ok) == len(states) else None

        healthy = wait_for("every watch healthy", all_healthy, 120)
        # ScaledJobs, ScaledObjects, TriggerAuthentications, ClusterTriggerAuthentications,
        # Secrets, ConfigMaps, Jobs, Pods: all namespaces each.
        assert len(healthy) == 8, healthy
        wait_for("gRPC health SERVING once the watches listed", lambda: health(scaler) == 1, 60)
        yield scaler
    finally:
        scaler.stop()
        helm(cluster, workdir, "uninstall", RELEASE, "-n", SYSTEM)


def migrated(scaler: Scaler, redis: RedisProcess, name: str) -> list[dict[str, Any]]:
    """The example's Secret, TriggerAuthentication and ScaledJob, adjusted only in the
    addresses (and the ScaledJob's name)."""
    secret, auth, job = kube.example_documents("redis-triggerauthentication-scaledjob.yaml")
    job["metadata"]["name"] = name
    job["spec"]["triggers"][0]["metadata"].update(scalerAddress=scaler.address,
                                                  address=redis.address, listName=name)  # fmt: skip
    kube.set_env(job, REDIS_ADDRESS=redis.address, LIST_NAME=name)
    return [secret, auth, job]


def namespace_with_auth(
    cluster: Cluster, scaler: Scaler, redis: RedisProcess, name: str
) -> tuple[str, dict[str, Any]]:
    """Namespace e2e-<name> holding the example's Secret (with Redis' password) and
    TriggerAuthentication; the ScaledJob, not yet created."""
    ns = kube.namespace(cluster, f"e2e-{name}")
    secret, auth, job = migrated(scaler, redis, name)
    secret["stringData"] = {"password": PASSWORD_1}
    cluster.core().create_namespaced_secret(ns, {**secret, "metadata": {"name": "redis-auth"}})
    kube.create(cluster, ns, auth)
    return ns, job


def set_secret(cluster: Cluster, ns: str, name: str, password: str) -> None:
    body = {"data": {"password": base64.b64encode(password.encode()).decode()}}
    cluster.core().patch_namespaced_secret(name, ns, body)


def test_a_migrated_scaledjob_with_a_trigger_authentication_scales(
    cluster: Cluster, kube_scaler: Scaler, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Moved from type: redis by changing type, scalerAddress and scalerType only: KEDA
    turns 7 items and then 3 more into Jobs poll by poll as explain predicts, each
    item processed once, with the password only in the TriggerAuthentication's Secret."""
    redis = RedisProcess(tmp_path_factory.mktemp("redis-migrated"), password=PASSWORD_1)
    redis.start()
    try:
        ns, job = namespace_with_auth(cluster, kube_scaler, redis, "migrated")
        assert "password" not in str(job["spec"]["triggers"])  # only the authenticationRef
        r = redis.client()

        def push(ids: range) -> None:
            r.rpush("migrated", *(f"item-{i}" for i in ids))

        def empty() -> bool:
            return r.llen("migrated") == 0 and r.llen("migrated:processing") == 0

        seen = run_bursts(cluster, ns, job, push, empty)
        # No poll failed on our side (KEDA cancels its own calls when it restarts a new
        # ScaledJob's loop: "context canceled" is KEDA's, not an answer of ours).
        ours = [e for p in seen for e in p.errors if "context canceled" not in e]
        assert ours == []
    finally:
        redis.stop()


def test_a_rotated_secret_is_picked_up_without_a_restart(
    cluster: Cluster, kube_scaler: Scaler, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Redis' password changes and its clients are cut off: the scaler, still holding
    the old Secret, is refused (KEDA shows it). The Secret is updated: with no restart,
    the next polls read with the new password and KEDA creates Jobs again."""
    redis = RedisProcess(tmp_path_factory.mktemp("redis-rotated"), password=PASSWORD_1)
    redis.start()
    try:
        ns, job = namespace_with_auth(cluster, kube_scaler, redis, "rotated")
        job["spec"]["pollingInterval"] = 2
        r = redis.client()
        r.rpush("rotated", "item-0", "item-1")
        kube.create(cluster, ns, job)
        kube.settle("2 items drained", lambda: drained(cluster, ns, "rotated", lambda: r.llen(
            "rotated") == 0 and r.llen("rotated:processing") == 0, 2))  # fmt: skip
        pid = kube_scaler.proc.pid

        import redis as redis_py

        r.config_set("requirepass", PASSWORD_2)
        r = redis_py.Redis(port=redis.port, password=PASSWORD_2, socket_timeout=5)
        # Cut off every client already signed in (the scaler's pool among them).
        r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

        def refused() -> list[Any]:
            return [e for e in kube.events(cluster, ns, "rotated", "KEDAScalerFailed")
                    if "refused our credentials" in (e.note or "")]  # fmt: skip

        kube.settle("KEDA shows the old password refused", refused)
        rotated_at = time.monotonic()
        set_secret(cluster, ns, "redis-auth", PASSWORD_2)
        r.rpush("rotated", "item-2", "item-3", "item-4")
        kube.settle("3 more items drained after the rotation", lambda: drained(
            cluster, ns, "rotated", lambda: r.llen("rotated") == 0
            and r.llen("rotated:processing") == 0, 5))  # fmt: skip
        took = time.monotonic() - rotated_at
        assert kube_scaler.proc.poll() is None
        assert kube_scaler.proc.pid == pid  # the same process: no restart
        counts = processed_items(cluster, ns)
        assert sorted(counts) == [f"item-{i}" for i in range(5)]
        assert set(counts.values()) == {1}
        # The scaler logs at DEBUG here, watching Secrets: neither password is in its log.
        log = kube_scaler.log.read_text()
        assert PASSWORD_1 not in log
        assert PASSWORD_2 not in log
        print(f"\nrotation: Secret updated -> 3 items drained by new Jobs in {took:.1f} s, "
              "same scaler process")  # fmt: skip
        kube.delete_scaledjob(cluster, ns, "rotated")
        r.close()
    finally:
        redis.stop()


def health(scaler: Scaler) -> int:
    """The scaler's gRPC health status (1 is SERVING), as a readiness probe asks."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(scaler.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    return int(answer.status)


def scrape(scaler: Scaler) -> str:
    port = re.search(r"metrics on 127\.0\.0\.1:(\d+)", scaler.log.read_text())
    assert port, scaler.log.read_text()[-2000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{port[1]}/metrics", timeout=10) as response:
        return str(response.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not m or m[1] != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m[3])
    return total


def test_job_outcome_metrics_count_what_the_api_server_says(
    cluster: Cluster, kube_scaler: Scaler, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Items whose work fails make Jobs fail (backoffLimit 0: BackoffLimitExceeded);
    the others succeed. The scaler's per-ScaledJob counters equal the Jobs' own
    conditions as the API server has them, the gauges fall to 0, and no Job started
    sooner than the node's start delay."""
    redis = RedisProcess(tmp_path_factory.mktemp("redis-outcomes"), password=PASSWORD_1)
    redis.start()
    try:
        ns, job = namespace_with_auth(cluster, kube_scaler, redis, "outcomes")
        job["spec"]["pollingInterval"] = 2
        job["spec"]["successfulJobsHistoryLimit"] = 100
        job["spec"]["failedJobsHistoryLimit"] = 100
        job["spec"]["jobTargetRef"]["backoffLimit"] = 0
        kube.set_env(job, WORK_COMMAND="sh -c 'if grep -q fail; then exit 3; fi'")
        r = redis.client()
        r.rpush("outcomes", "item-ok-0", "item-ok-1", "item-ok-2", "item-fail-0")
        kube.create(cluster, ns, job)

        def failed_twice() -> bool:
            return sum(kube.job_failed(j) for j in kube.jobs(cluster, ns, "outcomes")) >= 2

        # A failed item goes back on the list, so it fails again: stop after two.
        kube.settle("two failed Jobs", failed_twice)
        r.delete("outcomes", "outcomes:processing")
        kube.settle("every Job finished", lambda: all(
            kube.finished(j) for j in kube.jobs(cluster, ns, "outcomes")))  # fmt: skip
        jobs = kube.jobs(cluster, ns, "outcomes")
        succeeded = sum(not kube.job_failed(j) for j in jobs)
        reasons: dict[str, int] = {}
        for j in jobs:
            if kube.job_failed(j):
                reason = next(c.reason for c in j.status.conditions if c.type == "Failed")
                reasons[reason] = reasons.get(reason, 0) + 1
        assert succeeded >= 3
        assert reasons.get("BackoffLimitExceeded", 0) >= 2

        labels = {"scaled_namespace": ns, "scaled_name": "outcomes"}
        finished = "keda_queue_scaler_scaledjob_jobs_finished_total"

        def counted() -> str | None:
            text = scrape(kube_scaler)
            done = sample(text, finished, **labels)
            gauges = sample(text, "keda_queue_scaler_scaledjob_jobs", **labels)
            # The queue depth KEDA last asked about: 0 from its first poll after the delete.
            depth = sample(text, "keda_queue_scaler_workload_value", **labels)
            return text if done == len(jobs) and gauges == 0 and depth == 0 else None

        text = wait_for("the scaler to count every Job", counted, 120)
        assert sample(text, finished, outcome="succeeded", **labels) == succeeded
        for reason, count in reasons.items():
            assert sample(text, finished, outcome="failed", reason=reason, **labels) == count
        starts = "keda_queue_scaler_scaledjob_job_start_seconds"
        assert sample(text, f"{starts}_count", **labels) == len(jobs)
        # The node stand-in starts a Pod 3 s after it is bound: no Job starts sooner.
        assert sample(text, f"{starts}_bucket", le="2.0", **labels) == 0
        assert sample(text, "keda_queue_scaler_scaledjob_job_duration_seconds_count",
                      **labels) == len(jobs)  # fmt: skip
        assert "keda_queue_scaler_workload_value{" in text
        print(f"\njob metrics: {len(jobs)} Jobs ({succeeded} succeeded, failed {reasons}) "
              "counted as the API server has them")  # fmt: skip
        kube.delete_scaledjob(cluster, ns, "outcomes")
    finally:
        redis.stop()


def allowed(cluster: Cluster, user: str, verb: str, resource: str, ns: str = "",
            group: str = "") -> bool:  # fmt: skip
    """The API server's own answer (SubjectAccessReview) for a ServiceAccount user;
    ``resource`` may name a subresource (``pods/exec``)."""
    from kubernetes import client

    resource, _, sub = resource.partition("/")
    review = client.AuthorizationV1Api(cluster.api()).create_subject_access_review({
        "spec": {"user": user, "groups": ["system:serviceaccounts"],
                 "resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns,
                                        "group": group, "subresource": sub}},
    })  # fmt: skip
    return bool(review.status.allowed)


@pytest.mark.parametrize("scope", ["cluster", "namespaces"])
def test_the_charts_rbac_reads_what_the_scaler_needs_and_nothing_more(
    cluster: Cluster, tmp_path: Path, scope: str
) -> None:
    """The chart installed for real; the API server's authorizer answers for its
    ServiceAccount. With kubernetes.namespaces, a Secret of another namespace is
    refused, also when the scaler's own client asks for it."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    release, ns = f"kqs-rbac-{scope}", f"kqs-rbac-{scope}"
    team, other = kube.namespace(cluster, f"e2e-team-{scope}"), kube.namespace(
        cluster, f"e2e-other-{scope}")  # fmt: skip
    values = ["--set", f"kubernetes.namespaces={{{team}}}"] if scope == "namespaces" else []
    account = install(cluster, tmp_path, release, ns, *values)
    user = f"system:serviceaccount:{ns}:{account}"
    try:
        needs = [("secrets", ""), ("configmaps", ""), ("pods", ""), ("jobs", "batch"),
                 ("scaledjobs", "keda.sh"), ("scaledobjects", "keda.sh"),
                 ("triggerauthentications", "keda.sh")]  # fmt: skip
        for resource, group in needs:
            for verb in ("get", "list", "watch"):
                assert allowed(cluster, user, verb, resource, team, group), (verb, resource)
        for verb in ("get", "list", "watch"):
            assert allowed(cluster, user, verb, "clustertriggerauthentications", "", "keda.sh")
            assert allowed(cluster, user, verb, "secrets", "keda", "")  # CTA Secrets
        never = [("create", "jobs", "batch"), ("delete", "pods", ""), ("update", "secrets", ""),
                 ("patch", "scaledjobs", "keda.sh"), ("create", "serviceaccounts/token", ""),
                 ("list", "nodes", ""), ("get", "serviceaccounts", ""),
                 ("create", "triggerauthentications", "keda.sh"), ("create", "pods/exec", "")]  # fmt: skip
        for verb, resource, group in never:
            assert not allowed(cluster, user, verb, resource, team, group), (verb, resource)
        kube.secret(cluster, other, "not-yours", {"password": "x"})
        kubeconfig = service_account_kubeconfig(cluster, ns, account, tmp_path / "sa.kubeconfig")
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        if scope == "namespaces":
            assert not allowed(cluster, user, "get", "secrets", other)
            with pytest.raises(ApiException) as refused:
                core.read_namespaced_secret("not-yours", other)
            assert refused.value.status == 403
            with pytest.raises(ApiException) as refused:
                core.list_secret_for_all_namespaces()
            assert refused.value.status == 403
        else:
            assert core.read_namespaced_secret("not-yours", other).data
        with pytest.raises(ApiException) as refused:
            core.delete_namespaced_secret("not-yours", other)
        assert refused.value.status == 403
    finally:
        helm(cluster, tmp_path, "uninstall", release, "-n", ns)
