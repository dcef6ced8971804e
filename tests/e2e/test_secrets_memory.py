"""``serve --kubernetes`` in a namespace of 2,000 Secrets of 64 KiB each (about 170 MB
as the API server sends them), as the chart runs it (the image's install, the chart's
environment): its peak resident memory stays under the chart's documented 256 Mi
limit, and the Secret a TriggerAuthentication names is read (a real Redis read with
its password succeeds). The limit is read from the chart's values. The scaler keeps only Secrets that are referenced and never
holds a whole list of them."""

from __future__ import annotations

import base64
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.conftest import start_scaler
from tests.e2e.test_kubernetes import health, scrape
from tests.integration.test_memory import chart_memory_limit, rss

pytestmark = pytest.mark.timeout(900)
SECRETS, SIZE = 2000, 64 * 1024


def test_many_large_secrets_stay_out_of_memory(
    cluster: Cluster, tmp_path: Path, redis_password_server: RedisProcess
) -> None:
    ns = kube.namespace(cluster, "e2e-many-secrets")
    core = cluster.core()
    filler = base64.b64encode(os.urandom(SIZE)).decode()

    def make(i: int) -> None:
        core.create_namespaced_secret(ns, {"metadata": {"name": f"bulk-{i:04d}"},
                                           "type": "Opaque", "data": {"blob": filler}})  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(SECRETS)))
    # one of them is a team's Redis password, with its 64 KiB of other data beside it
    password = base64.b64encode(REDIS_PASSWORD.encode()).decode()
    core.patch_namespaced_secret("bulk-0042", ns, {"data": {"password": password}})
    kube.create(cluster, ns, {
        "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "redis-auth"},
        "spec": {"secretTargetRef": [{"parameter": "password", "name": "bulk-0042",
                                      "key": "password"}]},
    })  # fmt: skip
    redis_password_server.client().rpush("many-secrets", 1, 2, 3)
    metadata = {"scalerType": "redis", "address": redis_password_server.address,
                "listName": "many-secrets"}  # fmt: skip
    job = kube.example("redis-list-scaledjob.yaml")
    job["metadata"]["name"] = "reader"
    job["spec"]["triggers"] = [{"type": "external", "metadata": {**metadata,
                                "scalerAddress": "127.0.0.1:1"},  # KEDA's calls go nowhere
                                "authenticationRef": {"name": "redis-auth"}}]  # fmt: skip
    kube.create(cluster, ns, job)
    scaler = start_scaler(
        tmp_path, "--kubeconfig", str(cluster.kubeconfig), "--watch-namespaces", ns,
        values=("--set", "kubernetes.enabled=true", "--set", "kubernetes.kedaNamespace=keda"),
    )  # fmt: skip
    try:
        wait_for("gRPC health SERVING once the watches listed", lambda: health(scaler) == 1, 300)
        healthy = re.findall(r'kubernetes_watch_healthy\{watch="[^"]+"\} (\S+)', scrape(scaler))
        assert healthy
        assert all(float(v) == 1 for v in healthy)
        forwarded = {**metadata, "scalerAddress": "127.0.0.1:1"}

        def read() -> float | None:
            with grpc.insecure_channel(scaler.address) as channel:
                ref = pb.ScaledObjectRef(name="reader", namespace=ns, scalerMetadata=forwarded)
                try:
                    answer = pb_grpc.ExternalScalerStub(channel).GetMetrics(
                        pb.GetMetricsRequest(scaledObjectRef=ref), timeout=10
                    )
                except grpc.RpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:  # the Secret still loading
                        return None
                    raise
            return float(answer.metricValues[0].metricValueFloat)

        assert wait_for("an authenticated read with the Secret's password", read, 120) == 3
        peak, limit = rss(scaler.proc.pid, "VmHWM"), chart_memory_limit()
        print(f"\n[e2e secrets] {SECRETS} Secrets of {SIZE // 1024} KiB in {ns}: scaler peak "
              f"RSS {peak / 2**20:.0f} MiB (limit {limit / 2**20:.0f} MiB)")  # fmt: skip
        assert peak < limit
    finally:
        scaler.stop()
        kube.delete_scaledjob(cluster, ns, "reader")
        core.delete_collection_namespaced_secret(ns)
