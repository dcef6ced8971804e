"""Read what KEDA reads for one ScaledJob (or ScaledObject) from a live cluster
(``explain --from-cluster``).

With the user's own kubeconfig (as kubectl finds it) and permissions:

- the ScaledJob itself (``keda.sh/v1alpha1``);
- the values its triggers' ``...FromEnv`` keys name, from the Job template's
  container: literal ``env`` values, ``secretKeyRef`` / ``configMapKeyRef``, and
  ``envFrom`` Secrets and ConfigMaps, as KEDA's ``resolveEnv`` does (``env`` wins
  over ``envFrom``);
- its Jobs and their Pods, counted as KEDA v2.21.0's scale executor counts them: Jobs
  labelled ``scaledjob.keda.sh/name=<name>``, running unless a Complete or Failed
  condition is true, pending unless a Pod labelled ``job-name=<job>`` is Running or
  Succeeded (or, with ``pendingPodConditions``, has all of them true);
- for a ScaledObject, its scale target (a Deployment or StatefulSet): the Pod
  template's env for ``...FromEnv``, and its replicas from the scale subresource,
  where KEDA's executor reads them.

Needs the ``kubernetes`` package (``pip install 'keda-queue-scaler[kubernetes]'``).
The calls block; callers run them in a thread.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from scaler.documents import Doc, mapping, mappings, path, text
from scaler.keda import scaledobject
from scaler.keda.env import UNKNOWN, Lookup, Unknown
from scaler.keda.manifest import ScaledJob, from_manifest
from scaler.keda.scaledjob import JobState, PodState, count_jobs

GROUP, VERSION, PLURAL = "keda.sh", "v1alpha1", "scaledjobs"
INSTALL_HINT = (
    "the kubernetes package is not installed: pip install 'keda-queue-scaler[kubernetes]' "
    "(the image built from the Dockerfile has it)"
)


class ClusterError(Exception):
    """The cluster could not be read: the message says what and why."""


@dataclass(frozen=True)
class Snapshot:
    """One look at the cluster, as KEDA's next poll would see it."""

    job: ScaledJob
    running: int
    pending: int
    warnings: tuple[str, ...]


def api_client(kubeconfig: str | None = None, context: str | None = None) -> object:
    """An ApiClient from the kubeconfig kubectl would use (``KUBECONFIG``,
    ``~/.kube/config``), or the in-cluster service account."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (config.ConfigException, OSError, TypeError) as exc:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise ClusterError(f"no usable kubeconfig: {exc}") from None
    return client.ApiClient(configuration)


def parse_ref(text: str) -> tuple[str, str]:
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ClusterError(f"--from-cluster {text!r}: expected NAMESPACE/NAME")
    return namespace, name


def _api_error(what: str, exc: Exception) -> ClusterError:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", "") or type(exc).__name__
    if status == 403:
        return ClusterError(f"{what}: forbidden (your user may not read it)")
    if status == 404:
        return ClusterError(f"{what}: not found")
    return ClusterError(f"{what}: {status or ''} {reason}".strip())


def read_scaledjob(api: object, namespace: str, name: str) -> dict[str, object]:
    from kubernetes import client

    try:
        doc = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except client.ApiException as exc:
        raise _api_error(f"ScaledJob {namespace}/{name}", exc) from None
    return dict(doc)


def cluster_lookup(api: object, namespace: str) -> tuple[Lookup, list[str]]:
    """(a lookup of the namespace's Secrets and ConfigMaps for :mod:`scaler.keda.env`,
    the warnings it collects). One that does not exist is None, as KEDA reads it; one
    the user may not read (or any other API error) is UNKNOWN, with a warning, so its
    variables are reported and ``--env`` can supply them."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    cache: dict[tuple[str, str], Mapping[str, str] | Unknown | None] = {}
    warnings: list[str] = []

    def lookup(kind: str, name: str) -> Mapping[str, str] | Unknown | None:
        key = (kind, name)
        if key not in cache:
            try:
                if kind == "Secret":
                    raw = core.read_namespaced_secret(name, namespace).data or {}
                    cache[key] = {k: base64.b64decode(v).decode() for k, v in raw.items()}
                else:
                    cache[key] = dict(core.read_namespaced_config_map(name, namespace).data or {})
            except client.ApiException as exc:
                if exc.status == 404:
                    cache[key] = None
                else:
                    cache[key] = UNKNOWN
                    warnings.append(str(_api_error(f"{kind} {namespace}/{name}", exc)))
        return cache[key]

    return lookup, warnings


class Response(Protocol):
    """A Kubernetes client answer read with ``_preload_content=False``: the raw JSON."""

    data: bytes


def job_states(api: object, namespace: str, name: str) -> list[JobState]:
    """The ScaledJob's Jobs and their Pods, as the scale executor lists them."""
    from kubernetes import client

    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)

    def listed(call: Callable[..., Response], what: str, selector: str) -> list[Doc]:
        try:
            response = call(namespace, label_selector=selector, _preload_content=False)
        except client.ApiException as exc:
            raise _api_error(what, exc) from None
        return mappings(mapping(json.loads(response.data)).get("items"))

    def conditions(doc: Doc) -> dict[str, str]:
        found = mappings(path(doc, "status", "conditions"))
        return {text(c.get("type")): text(c.get("status")) for c in found}

    states = []
    jobs = listed(batch.list_namespaced_job, f"Jobs of {namespace}/{name}",
                  f"scaledjob.keda.sh/name={name}")  # fmt: skip
    for job in jobs:
        state = JobState(conditions=conditions(job))
        if not state.finished:  # a finished Job's Pods do not matter
            job_name = text(path(job, "metadata", "name"))
            pods = listed(core.list_namespaced_pod, f"Pods of Job {namespace}/{job_name}",
                          f"job-name={job_name}")  # fmt: skip
            state = JobState(
                conditions=state.conditions,
                pods=tuple(
                    PodState(
                        phase=text(path(pod, "status", "phase")) or "Pending",
                        conditions=conditions(pod),
                    )
                    for pod in pods
                ),
            )
        states.append(state)
    return states


def snapshot(
    api: object, namespace: str, name: str, *, env: Mapping[str, str] | None = None
) -> Snapshot:
    """The ScaledJob, its resolved trigger metadata and KEDA's running/pending counts.
    ``env`` adds or overrides values (``--env``), e.g. for a Secret the user may not read."""
    doc = read_scaledjob(api, namespace, name)
    lookup, warnings = cluster_lookup(api, namespace)
    job = from_manifest(doc, env=env, lookup=lookup)
    running, pending = count_jobs(
        job_states(api, namespace, name), job.spec.scaling_strategy.pending_pod_conditions
    )
    return Snapshot(job, running, pending, tuple(warnings))


@dataclass(frozen=True)
class ObjectSnapshot:
    """A ScaledObject and its scale target's replicas, as KEDA's next poll sees them."""

    scaled: scaledobject.ScaledObject
    replicas: int
    warnings: tuple[str, ...]


#: the scale targets read here: kind -> AppsV1Api's read and read-scale methods
_TARGETS = {
    "Deployment": ("read_namespaced_deployment", "read_namespaced_deployment_scale"),
    "StatefulSet": ("read_namespaced_stateful_set", "read_namespaced_stateful_set_scale"),
}


def read_scaledobject(api: object, namespace: str, name: str) -> dict[str, object]:
    from kubernetes import client

    try:
        doc = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "scaledobjects", name
        )
    except client.ApiException as exc:
        raise _api_error(f"ScaledObject {namespace}/{name}", exc) from None
    return dict(doc)


def kind_of(api: object, namespace: str, name: str) -> str:
    """Whether ``namespace/name`` is a ScaledJob or a ScaledObject (a ScaledJob when
    both exist: ``--kind`` chooses)."""
    try:
        read_scaledjob(api, namespace, name)
        return "ScaledJob"
    except ClusterError as job_error:
        try:
            read_scaledobject(api, namespace, name)
        except ClusterError as object_error:
            raise ClusterError(f"{job_error}; {object_error}") from None
        return "ScaledObject"


def snapshot_object(
    api: object, namespace: str, name: str, *, env: Mapping[str, str] | None = None
) -> ObjectSnapshot:
    """The ScaledObject, its trigger metadata resolved from its scale target's Pod
    template, and the target's replicas now."""
    from kubernetes import client

    doc = read_scaledobject(api, namespace, name)
    kind, target_name = scaledobject.target_of(doc)
    methods = _TARGETS.get(kind)
    if methods is None:
        raise ClusterError(
            f"ScaledObject {namespace}/{name} scales a {kind}: explain reads Deployments and "
            "StatefulSets from a cluster; for others save the ScaledObject and give "
            "--replicas N with the file"
        )
    apps = client.AppsV1Api(api)
    what = f"{kind} {namespace}/{target_name} (the scale target)"
    try:
        read: Callable[..., Response] = getattr(apps, methods[0])
        target = mapping(json.loads(read(target_name, namespace, _preload_content=False).data))
        read_scale: Callable[..., Response] = getattr(apps, methods[1])
        scale = mapping(json.loads(read_scale(target_name, namespace, _preload_content=False).data))
    except client.ApiException as exc:
        raise _api_error(what, exc) from None
    lookup, warnings = cluster_lookup(api, namespace)
    scaled = scaledobject.from_manifest(doc, target, env=env, lookup=lookup)
    replicas = path(scale, "spec", "replicas")
    return ObjectSnapshot(scaled, replicas if isinstance(replicas, int) else 0, tuple(warnings))
