"""Helpers for the end-to-end tests: example manifests, KEDA's polls from its log,
Jobs, events and conditions, read with the Python ``kubernetes`` client."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from scaler.keda.manifest import from_manifest
from scaler.keda.scaledjob import Decision, SpecReading, TriggerReading, decide
from tests.e2e.cluster import Cluster, keda_log, wait_for
from tests.kedago import ROOT

GROUP, VERSION = "keda.sh", "v1alpha1"


def example(name: str) -> dict[str, Any]:
    (doc,) = example_documents(name)
    return doc


def example_documents(name: str) -> list[dict[str, Any]]:
    return [dict(d) for d in yaml.safe_load_all((ROOT / "examples" / name).read_text()) if d]


def set_env(doc: dict[str, Any], **values: str) -> None:
    """Replace (or add) literal env values of the Job's first container."""
    container = doc["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]
    env = [e for e in container.get("env", []) if e["name"] not in values]
    env += [{"name": k, "value": v} for k, v in values.items()]
    container["env"] = env


def namespace(cluster: Cluster, name: str, *, exist_ok: bool = False) -> str:
    from kubernetes.client.exceptions import ApiException

    core = cluster.core()
    try:
        core.create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if not (exist_ok and exc.status == 409):
            raise
    wait_for(f"namespace {name}'s default ServiceAccount",
             lambda: core.read_namespaced_service_account("default", name))  # fmt: skip
    return name


def secret(cluster: Cluster, ns: str, name: str, data: Mapping[str, str]) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    cluster.core().create_namespaced_secret(
        ns, {"metadata": {"name": name}, "type": "Opaque", "data": encoded}
    )


def create(cluster: Cluster, ns: str, doc: Mapping[str, Any]) -> None:
    from kubernetes import client

    body = copy.deepcopy(dict(doc))
    api = client.CustomObjectsApi(cluster.api())
    if body["kind"] == "ClusterTriggerAuthentication":  # cluster-scoped
        api.create_cluster_custom_object(GROUP, VERSION, "clustertriggerauthentications", body)
        return
    body["metadata"] = {**body.get("metadata", {}), "namespace": ns}
    plural = {"ScaledJob": "scaledjobs", "ScaledObject": "scaledobjects",
              "TriggerAuthentication": "triggerauthentications"}[body["kind"]]  # fmt: skip
    api.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body)


def delete_scaledjob(cluster: Cluster, ns: str, name: str) -> None:
    from kubernetes import client

    client.CustomObjectsApi(cluster.api()).delete_namespaced_custom_object(
        GROUP, VERSION, ns, "scaledjobs", name
    )


def scaledjob(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    from kubernetes import client

    return dict(
        client.CustomObjectsApi(cluster.api()).get_namespaced_custom_object(
            GROUP, VERSION, ns, "scaledjobs", name
        )
    )


def scaledobject(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    from kubernetes import client

    return dict(
        client.CustomObjectsApi(cluster.api()).get_namespaced_custom_object(
            GROUP, VERSION, ns, "scaledobjects", name
        )
    )


def condition(
    cluster: Cluster, ns: str, name: str, kind: str, *, plural: str = "scaledjobs"
) -> tuple[str, str, str] | None:
    read = scaledobject if plural == "scaledobjects" else scaledjob
    for c in read(cluster, ns, name).get("status", {}).get("conditions", []) or []:
        if c.get("type") == kind:
            return c.get("status", ""), c.get("reason", ""), c.get("message", "")
    return None


def jobs(cluster: Cluster, ns: str, name: str) -> list[Any]:
    from kubernetes import client

    selector = f"scaledjob.keda.sh/name={name}"
    return list(
        client.BatchV1Api(cluster.api()).list_namespaced_job(ns, label_selector=selector).items
    )


def finished(job: Any) -> bool:
    return any(
        c.type in ("Complete", "Failed") and c.status == "True"
        for c in (job.status.conditions or [])
    )


def job_failed(job: Any) -> bool:
    return any(c.type == "Failed" and c.status == "True" for c in (job.status.conditions or []))


def events(
    cluster: Cluster, ns: str, name: str, reason: str | None = None, *, kind: str = "ScaledJob"
) -> list[Any]:
    """Events about the ScaledJob (or ``kind``) (events.k8s.io/v1, the API KEDA's
    recorder writes)."""
    from kubernetes import client

    out = []
    selector = f"regarding.name={name},regarding.kind={kind}"
    for e in (
        client.EventsV1Api(cluster.api()).list_namespaced_event(ns, field_selector=selector).items
    ):
        if reason is None or e.reason == reason:
            out.append(e)
    return out


@dataclass
class Poll:
    """One poll of one ScaledJob, as KEDA's operator logged it."""

    specs: list[SpecReading] = field(default_factory=list)
    running: int = -1
    pending: int = -1
    decided: int = 0  # the Jobs KEDA set out to create ("Creating jobs")
    created: int = 0  # the Jobs the API server accepted ("Created jobs")
    errors: list[str] = field(default_factory=list)


def polls(cluster: Cluster, ns: str, name: str) -> list[Poll]:
    """Every completed poll of ``ns/name`` in the operator's log, in order.

    Per poll, getScaledJobMetrics logs each spec's queue length, target and activity
    ("Scaler Metric value", debug) or its error; RequestJobScale then logs the
    running and pending Jobs and, when it creates some, "Creating jobs" (its
    decision) and "Created jobs" (what the API server accepted: a create cancelled
    because KEDA restarted the ScaledJob's loop counts 0 there)."""
    out: list[Poll] = []
    current = Poll()
    for line in keda_log(cluster):
        if line.get("scaledJob.Name") != name or line.get("scaledJob.Namespace", ns) != ns:
            continue
        msg = line.get("msg")
        if msg == "Scaler Metric value":
            metric = next(k for k in line if k.startswith("s") and "-" in k and k[1].isdigit())
            current.specs.append(
                SpecReading(metric, float(line["targetAverageValue"]), (float(line[metric]),),
                            bool(line["isTriggerActive"]))
            )  # fmt: skip
        elif msg == "Error getting scaler metrics and activity, but continue":
            current.specs.append(SpecReading("error", 0.0, error=str(line.get("error"))))
            current.errors.append(str(line.get("error")))
        elif msg == "Scaling Jobs" and "Number of running Jobs" in line:
            current.running = int(line["Number of running Jobs"])
        elif msg == "Scaling Jobs" and "Number of pending Jobs" in line:
            current.pending = int(line["Number of pending Jobs"])
            out.append(current)
            current = Poll()
        elif msg == "Creating jobs" and "Number of jobs" in line and out:
            out[-1].decided = int(line["Number of jobs"])
        elif msg == "Created jobs" and out:
            out[-1].created = int(line["Number of jobs"])
    return out


def predict(manifest: Mapping[str, Any], poll: Poll) -> Decision:
    """What our model (explain's arithmetic) says KEDA creates in this poll."""
    spec = from_manifest(dict(manifest)).spec
    by_trigger: dict[str, list[SpecReading]] = {}
    for reading in poll.specs:  # KEDA names a trigger's metrics s<index>-...
        by_trigger.setdefault(reading.metric_name.split("-", 1)[0], []).append(reading)
    readings = [TriggerReading(specs=tuple(specs)) for specs in by_trigger.values()]
    return decide(spec, readings, running=poll.running, pending=poll.pending)


def mismatches(manifest: Mapping[str, Any], seen: list[Poll]) -> list[str]:
    out = []
    for i, poll in enumerate(seen):
        predicted = predict(manifest, poll)
        if predicted.jobs != poll.decided:
            out.append(
                f"poll {i}: KEDA decided {poll.decided}, explain says {predicted.jobs} ({poll})"
            )
    return out


def settle(what: str, check: Callable[[], Any], timeout: float = 240) -> Any:
    return wait_for(what, check, timeout)
