"""End to end, through the real KEDA operator: example ScaledJobs, adjusted only in
their addresses, turn work pushed to real brokers into Jobs that drain it.

For every scenario the test asserts that KEDA created, poll by poll, exactly the
Jobs our model (explain's arithmetic) predicts from what KEDA read in that poll;
that every item was processed exactly once; and that Jobs stop once the queue is
empty."""

from __future__ import annotations

import collections
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD
from tests.e2e import kube
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import Scaler

pytestmark = pytest.mark.timeout(600)
ITEM = re.compile(r"item-[0-9]+")


def processed_items(
    cluster: Cluster, ns: str, item: re.Pattern[str] = ITEM
) -> collections.Counter[str]:
    """Items the workers handled: the default WORK_COMMAND (cat) prints each one;
    ``item`` finds them in the Jobs' logs (a group, if any, is the item)."""
    assert cluster.node is not None
    counts: collections.Counter[str] = collections.Counter()
    for log in Path(cluster.node.logs).glob(f"{ns}_*.log"):
        counts.update(item.findall(log.read_text(errors="replace")))
    return counts


def drained(
    cluster: Cluster, ns: str, name: str, queue_empty: Any, items: int, item: re.Pattern[str] = ITEM
) -> bool:
    cluster.check_alive()
    if not queue_empty():
        return False
    js = kube.jobs(cluster, ns, name)
    return (
        bool(js)
        and all(kube.finished(j) for j in js)
        and sum(processed_items(cluster, ns, item).values()) >= items
    )


def quiet_polls(cluster: Cluster, ns: str, name: str, after: int, count: int = 3) -> bool:
    """At least ``count`` more polls happened after poll number ``after``."""
    return len(kube.polls(cluster, ns, name)) >= after + count


def assert_scenario(
    cluster: Cluster, ns: str, doc: dict[str, Any], items: int, item: re.Pattern[str] = ITEM
) -> list[kube.Poll]:
    name = doc["metadata"]["name"]
    seen = kube.polls(cluster, ns, name)
    assert seen, "KEDA logged no poll"
    assert kube.mismatches(doc, seen) == []
    created = sum(p.created for p in seen)
    # Jobs that ran a Pod (a retried Job runs more than one Pod; its name is the prefix).
    assert cluster.node is not None
    ran = {log.stem.removeprefix(f"{ns}_").rsplit("-", 1)[0]
           for log in Path(cluster.node.logs).glob(f"{ns}_*.log")}  # fmt: skip
    # KEDA's log may count fewer: a create it cancelled (it restarts a new
    # ScaledJob's loop) can still have reached the API server.
    assert created <= len(ran) <= sum(p.decided for p in seen)
    counts = processed_items(cluster, ns, item)
    assert sorted(counts) == sorted(f"item-{i}" for i in range(items))
    assert set(counts.values()) == {1}, counts  # exactly once
    print(f"\n{ns}: {len(seen)} polls compared with explain, 0 mismatches; "
          f"{created} Jobs created; {sum(counts.values())} items processed once each")  # fmt: skip
    return seen


def redis_example(
    cluster: Cluster, scaler: Scaler, redis: RedisProcess, kind: str
) -> tuple[str, dict[str, Any], Any]:
    """A namespace with the example's Secret, and the Redis example aimed at us."""
    ns = kube.namespace(cluster, f"e2e-redis-{kind}")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    doc = kube.example(f"redis-{kind}-scaledjob.yaml")
    doc["spec"]["triggers"][0]["metadata"]["scalerAddress"] = scaler.address
    kube.set_env(doc, REDIS_ADDRESS=redis.address)
    return ns, doc, redis.client()


def test_redis_list_example(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess
) -> None:
    ns, doc, r = redis_example(cluster, scaler, redis_password_server, "list")
    r.delete("jobs", "jobs:processing")

    def push(ids: range) -> None:
        r.rpush("jobs", *(f"item-{i}" for i in ids))

    def empty() -> bool:
        return r.llen("jobs") == 0 and r.llen("jobs:processing") == 0

    run_bursts(cluster, ns, doc, push, empty)


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
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess, case: str,
    metadata: dict[str, str], password: str, needle: str,
) -> None:  # fmt: skip
    """A failing trigger is a KEDAScalerFailed Warning event with our message and a
    Ready condition of False, and no Job is created: not a silent line in the log."""
    from tests.brokers import free_port

    ns = kube.namespace(cluster, f"e2e-{case}")
    kube.secret(cluster, ns, "redis-auth", {"password": password})
    redis_password_server.client().rpush("jobs", "item-x")  # work is waiting: a 0 would be a lie
    address = f"127.0.0.1:{free_port()}" if case == "broker-down" else redis_password_server.address
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
    redis_password_server.client().delete("jobs")


def run_bursts(
    cluster: Cluster,
    ns: str,
    doc: dict[str, Any],
    push: Any,
    empty: Any,
    item: re.Pattern[str] = ITEM,
) -> list[kube.Poll]:
    """Create the ScaledJob, push 7 items then 3 more, wait for each to drain and
    for quiet polls after, then check every poll and every item. The ScaledJob is
    deleted afterwards, also when a step fails: left running, it would keep polling
    (and its workers taking items) through the tests after it."""
    name = doc["metadata"]["name"]
    push(range(7))
    kube.create(cluster, ns, doc)
    try:
        kube.settle("7 items drained", lambda: drained(cluster, ns, name, empty, 7, item))
        push(range(7, 10))
        kube.settle("10 items drained", lambda: drained(cluster, ns, name, empty, 10, item))
        after = len(kube.polls(cluster, ns, name))
        kube.settle("3 quiet polls", lambda: quiet_polls(cluster, ns, name, after))
        seen = assert_scenario(cluster, ns, doc, 10, item)
        assert sum(p.created for p in seen[after:]) == 0
    except BaseException:
        with contextlib.suppress(Exception):  # the failure above is the one to report
            kube.delete_scaledjob(cluster, ns, name)
        raise
    kube.delete_scaledjob(cluster, ns, name)
    return seen


def test_redis_stream_example(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess
) -> None:
    ns, doc, r = redis_example(cluster, scaler, redis_password_server, "stream")
    r.delete("orders")
    r.xgroup_create("orders", "order-workers", id="0", mkstream=True)

    def push(ids: range) -> None:
        for i in ids:
            r.xadd("orders", {"item": f"item-{i}"})

    def empty() -> bool:
        (group,) = r.xinfo_groups("orders")
        return bool(group["lag"] == 0 and group["pending"] == 0)

    run_bursts(cluster, ns, doc, push, empty)


def test_sqs_example(cluster: Cluster, scaler: Scaler, moto_server: Any) -> None:
    import boto3

    ns = kube.namespace(cluster, "e2e-sqs")
    creds = {"aws_access_key_id": "e2e", "aws_secret_access_key": "e2e"}
    sqs = boto3.client("sqs", region_name="eu-west-1", endpoint_url=moto_server.endpoint, **creds)
    url = sqs.create_queue(QueueName="e2e-jobs")["QueueUrl"]
    doc = kube.example("sqs-scaledjob.yaml")
    trigger = doc["spec"]["triggers"][0]["metadata"]
    trigger.update(scalerAddress=scaler.address, awsEndpoint=moto_server.endpoint)
    # The pod's identity (IRSA in a cluster) is plain keys here, for the emulator.
    kube.set_env(doc, QUEUE_URL=url, AWS_ENDPOINT_URL=moto_server.endpoint,
                 AWS_ACCESS_KEY_ID="e2e", AWS_SECRET_ACCESS_KEY="e2e")  # fmt: skip

    def push(ids: range) -> None:
        for i in ids:
            sqs.send_message(QueueUrl=url, MessageBody=f"item-{i}")

    def empty() -> bool:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return all(got[n] == "0" for n in names)

    run_bursts(cluster, ns, doc, push, empty)


def test_rabbitmq_example(cluster: Cluster, scaler: Scaler, rabbitmq: Any) -> None:
    ns = kube.namespace(cluster, "e2e-rabbitmq")
    kube.secret(cluster, ns, "rabbitmq-auth", {
        "management-url": rabbitmq.http_url("/"), "amqp-url": rabbitmq.amqp_url()})  # fmt: skip
    doc = kube.example("rabbitmq-scaledjob.yaml")
    doc["spec"]["triggers"][0]["metadata"]["scalerAddress"] = scaler.address
    rabbitmq.api("PUT", "/api/queues/%2F/jobs", {"durable": True})

    def push(ids: range) -> None:
        for i in ids:
            rabbitmq.api("POST", "/api/exchanges/%2F/amq.default/publish", {
                "properties": {}, "routing_key": "jobs", "payload": f"item-{i}",
                "payload_encoding": "string"})  # fmt: skip

    def empty() -> bool:
        queue = rabbitmq.api("GET", "/api/queues/%2F/jobs")
        return bool(queue.get("messages") == 0)

    run_bursts(cluster, ns, doc, push, empty)
    rabbitmq.api("DELETE", "/api/queues/%2F/jobs")


@pytest.fixture(scope="module")
def tls_scaler(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The scaler with a server certificate and required client certificates (mTLS)."""
    from tests.certs import make_pki
    from tests.e2e.conftest import start_scaler

    files = tmp_path_factory.mktemp("mounted")  # where the chart mounts its Secret
    pki = make_pki(files / "tls")
    s = start_scaler(
        tmp_path_factory.mktemp("tls-scaler"), files=files,
        values=("--set", "tls.enabled=true", "--set", "tls.clientAuth=true",
                "--set", "tls.existingSecret=scaler-tls"),
    )  # fmt: skip
    yield s, pki
    s.stop()


@pytest.mark.parametrize(
    "case",
    ["mtls-triggerauthentication", "mtls-clustertriggerauthentication", "wrong-ca",
     "no-client-cert"],
)  # fmt: skip
def test_keda_reaches_the_scaler_over_mtls(
    cluster: Cluster,
    tls_scaler: Any,
    redis_password_server: RedisProcess,
    tmp_path: Path,
    case: str,
) -> None:
    """KEDA takes caCert, tlsClientCert and tlsClientKey from a TriggerAuthentication
    (Secrets in the ScaledJob's namespace) or a ClusterTriggerAuthentication (Secrets
    in KEDA's cluster-objects namespace) for its own connection to us. The two mtls
    cases apply the examples' objects as shipped, with the Secret their cert-manager
    Certificate would issue, where it would issue it."""
    from tests.certs import make_pki

    scaler, pki = tls_scaler
    ns = kube.namespace(cluster, f"e2e-tls-{case}")
    list_name = f"tls-{case}"
    client_cert = {"tls.crt": pki.client_cert.read_text(), "tls.key": pki.client_key.read_text()}
    if case.startswith("mtls-"):
        docs = {d["kind"]: d for d in kube.example_documents(f"{case}.yaml")}
        certificate, doc = docs["Certificate"], docs["ScaledJob"]
        auth = docs.get("TriggerAuthentication") or docs["ClusterTriggerAuthentication"]
        if auth["kind"] == "ClusterTriggerAuthentication":
            secret_ns = kube.namespace(cluster, certificate["metadata"]["namespace"], exist_ok=True)
        else:
            secret_ns = ns  # the example's team namespace, here the test's
        kube.secret(cluster, secret_ns, certificate["spec"]["secretName"],
                    {"ca.crt": pki.ca.read_text(), **client_cert})  # fmt: skip
        kube.create(cluster, ns, auth)
    else:
        kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
        ca = make_pki(tmp_path / "other").ca if case == "wrong-ca" else pki.ca
        material = {"ca.crt": ca.read_text()}
        if case != "no-client-cert":
            material |= client_cert
        kube.secret(cluster, ns, "scaler-tls", material)
        params = [{"parameter": "caCert", "name": "scaler-tls", "key": "ca.crt"}]
        if case != "no-client-cert":
            params += [
                {"parameter": "tlsClientCert", "name": "scaler-tls", "key": "tls.crt"},
                {"parameter": "tlsClientKey", "name": "scaler-tls", "key": "tls.key"},
            ]
        kube.create(cluster, ns, {
            "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "scaler-tls"}, "spec": {"secretTargetRef": params}})  # fmt: skip
        doc = kube.example("redis-list-scaledjob.yaml")
        doc["spec"]["triggers"][0]["authenticationRef"] = {"name": "scaler-tls"}
    name = doc["metadata"]["name"] = f"tls-{case}"[:50]
    doc["spec"]["pollingInterval"] = 2
    trigger = doc["spec"]["triggers"][0]
    trigger["metadata"].update(scalerAddress=scaler.address, listName=list_name)
    if "passwordFromEnv" not in trigger["metadata"]:  # the TLS examples' Redis has none
        trigger["metadata"]["passwordFromEnv"] = "REDIS_PASSWORD"
        kube.set_env(doc, REDIS_PASSWORD=REDIS_PASSWORD)
    kube.set_env(doc, REDIS_ADDRESS=redis_password_server.address, LIST_NAME=list_name)
    r = redis_password_server.client()
    if case.startswith("mtls-"):
        kube.create(cluster, ns, doc)
        # The item goes in once KEDA polls the empty list over mTLS. A new ScaledJob's
        # first poll can run in two scale loops at once: KEDA's own update adding its
        # finalizer raised the generation to 2 here (the Jobs carry it), each reconcile
        # starts a loop with its own mutex, and both saw the item and no Job: two Jobs
        # for one item (kedacore/keda#2488). After two polls one loop is left.
        kube.settle("2 polls of the empty list", lambda: quiet_polls(cluster, ns, name, 0, 2))
        r.rpush(list_name, "item-0")
        kube.settle("the item drained", lambda: drained(
            cluster, ns, name, lambda: r.llen(list_name) == 0, 1))  # fmt: skip
        # Every poll agrees with explain, Jobs lie between what KEDA's log says it
        # created and decided (created <= ran <= decided), and the item ran once.
        seen = assert_scenario(cluster, ns, doc, 1)
        assert sum(p.decided for p in seen) >= 1
        assert len(kube.jobs(cluster, ns, name)) <= sum(p.decided for p in seen)
    else:
        r.rpush(list_name, "item-0")
        kube.create(cluster, ns, doc)

        # The handshake fails, so GetMetricSpec fails first: KEDA drops the trigger
        # silently (operator log only) and never calls GetMetrics. No Job, no event.
        def refused() -> list[dict[str, Any]]:
            return [line for line in cluster_log(cluster)
                    if line.get("name") == name and line.get("level") == "error"
                    and "GetMetricSpecForScaling" in str(line.get("stacktrace", ""))]  # fmt: skip

        kube.settle("the operator logs the failed GetMetricSpec", refused)
        after = len(kube.polls(cluster, ns, name))
        kube.settle("2 more polls", lambda: quiet_polls(cluster, ns, name, after, 2))
        assert kube.jobs(cluster, ns, name) == []
        assert kube.events(cluster, ns, name, "KEDAScalerFailed") == []
        assert r.llen(list_name) == 1
    kube.delete_scaledjob(cluster, ns, name)


def cluster_log(cluster: Cluster) -> list[dict[str, Any]]:
    from tests.e2e.cluster import keda_log

    return list(keda_log(cluster))


@pytest.mark.parametrize(
    "values",
    [
        ["--set", "networkPolicy.enabled=true", "--set", "grafanaDashboard.enabled=true"],
        ["-f", "replicas-values.yaml"],
        ["-f", "tls-values.yaml"],
        [
            "--set",
            "tls.enabled=true",
            "--set",
            "tls.existingSecret=scaler-tls",
            "--set",
            "tls.clientAuth=true",
        ],
    ],
    ids=["policy-and-dashboard", "replicas", "tls", "mtls"],
)
def test_the_chart_installs_into_a_real_api_server(
    cluster: Cluster, tmp_path: Path, values: list[str]
) -> None:
    """helm install (no --wait: no image runs here): the API server accepts every
    object the chart renders, and helm uninstall removes them. (The monitoring and
    cert-manager values need the Prometheus operator's and cert-manager's CRDs,
    which this cluster does not have.)"""
    import os
    import subprocess

    helm = os.environ.get("KQS_HELM") or "helm"
    chart = str(Path(__file__).parents[2] / "charts" / "keda-queue-scaler")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(tmp_path),
           "HELM_CONFIG_HOME": str(tmp_path), "HELM_DATA_HOME": str(tmp_path)}  # fmt: skip

    def run(*args: str) -> str:
        done = subprocess.run([helm, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    values = [str(Path(chart) / "ci" / v) if v.endswith(".yaml") else v for v in values]
    run("install", "kqs", chart, "--namespace", "keda", *values)
    manifest = [d for d in yaml.safe_load_all(run("get", "manifest", "kqs", "-n", "keda")) if d]
    kinds = sorted({d["kind"] for d in manifest})
    assert {"Deployment", "Service", "ServiceAccount"} <= set(kinds), kinds
    present = [_exists_object(cluster, d) for d in manifest]
    assert all(present), list(zip(kinds, present, strict=False))
    print(f"\nchart: the API server accepted {len(manifest)} objects: {', '.join(kinds)}")
    run("uninstall", "kqs", "-n", "keda")
    assert not any(_exists_object(cluster, d) for d in manifest)


def _exists_object(cluster: Cluster, doc: dict[str, Any]) -> bool:
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    client = dynamic.DynamicClient(cluster.api())
    resource = client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    try:
        resource.get(
            name=doc["metadata"]["name"], namespace=doc["metadata"].get("namespace", "keda")
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def slow_redis_list(
    scaler: Scaler, redis: RedisProcess, name: str, strategy: str
) -> dict[str, Any]:
    doc = kube.example("redis-list-scaledjob.yaml")
    doc["metadata"]["name"] = name
    doc["spec"]["pollingInterval"] = 2
    doc["spec"]["maxReplicaCount"] = 6
    doc["spec"]["scalingStrategy"] = {"strategy": strategy}
    doc["spec"]["triggers"][0]["metadata"].update(scalerAddress=scaler.address, listName=name)
    # Each Job holds its item for 4 s: work keeps arriving while Jobs are busy.
    kube.set_env(
        doc, REDIS_ADDRESS=redis.address, LIST_NAME=name, WORK_COMMAND="sh -c 'sleep 4; cat'"
    )
    return doc


@pytest.mark.parametrize("strategy", ["default", "accurate", "eager"])
def test_strategies_on_a_steady_inflow(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess, strategy: str
) -> None:
    """Items keep arriving while Jobs hold earlier ones, where the strategies differ:
    every poll of the real KEDA still matches the model, for each strategy."""
    ns = kube.namespace(cluster, f"e2e-strategy-{strategy}")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    name = f"inflow-{strategy}"
    doc = slow_redis_list(scaler, redis_password_server, name, strategy)
    r = redis_password_server.client()
    r.delete(name, f"{name}:processing")
    kube.create(cluster, ns, doc)
    for burst in range(4):  # 3 items per burst, the next once Jobs hold earlier items
        polled = len(kube.polls(cluster, ns, name))
        r.rpush(name, *(f"item-{burst * 3 + i}" for i in range(3)))
        kube.settle("a poll with Jobs at work", lambda p=polled: any(
            q.running > q.pending for q in kube.polls(cluster, ns, name)[p:]))  # fmt: skip

    def empty() -> bool:
        return r.llen(name) == 0 and r.llen(f"{name}:processing") == 0

    kube.settle("12 items drained", lambda: drained(cluster, ns, name, empty, 12))
    seen = assert_scenario(cluster, ns, doc, 12)
    differing = [p for p in seen if len(set(kube.predict(doc, p).by_strategy.values())) > 1]
    assert differing, "no poll where the strategies would differ: the scenario is too easy"
    print(f"{strategy}: {len(differing)} of {len(seen)} polls where the strategies differ; "
          f"Jobs created: {sum(p.created for p in seen)}")  # fmt: skip
    kube.delete_scaledjob(cluster, ns, name)


def test_min_replicas_and_two_triggers(
    cluster: Cluster, scaler: Scaler, redis_password_server: RedisProcess
) -> None:
    """minReplicaCount 2 and two triggers combined by sum: KEDA tops up to the minimum,
    keeps the ScaledJob active, and subtracts the minimum as the model says."""
    ns = kube.namespace(cluster, "e2e-min-two")
    kube.secret(cluster, ns, "redis-auth", {"password": REDIS_PASSWORD})
    name = "min-two"
    doc = slow_redis_list(scaler, redis_password_server, name, "accurate")
    doc["spec"]["minReplicaCount"] = 2
    doc["spec"]["maxReplicaCount"] = 8
    doc["spec"]["scalingStrategy"]["multipleScalersCalculation"] = "sum"
    second = {**doc["spec"]["triggers"][0], "metadata": {
        **doc["spec"]["triggers"][0]["metadata"], "listName": "min-two-b", "listLength": "2"}}  # fmt: skip
    doc["spec"]["triggers"].append(second)
    r = redis_password_server.client()
    r.delete(name, "min-two-b", f"{name}:processing")
    r.rpush(name, *(f"item-{i}" for i in range(5)))
    r.rpush("min-two-b", *(f"other-{i}" for i in range(4)))  # counted, never worked
    kube.create(cluster, ns, doc)
    kube.settle("8 polls", lambda: quiet_polls(cluster, ns, name, 0, 8))
    seen = kube.polls(cluster, ns, name)
    assert kube.mismatches(doc, seen) == []
    assert any(len(p.specs) == 2 for p in seen)  # both triggers were read
    assert any(p.running < 2 and p.decided > 0 for p in seen)  # the top-up to min
    print(f"\nmin-two: {len(seen)} polls compared with explain, 0 mismatches; "
          f"Jobs created: {sum(p.created for p in seen)}")  # fmt: skip
    kube.delete_scaledjob(cluster, ns, name)
