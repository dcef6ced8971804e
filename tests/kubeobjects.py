"""Fixed Kubernetes objects for the authenticationRef resolver (``scaler.kube.auth``):
what the scaler's watches would hold, without a cluster. The end-to-end suite runs
the same resolver over real watches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FixedObjects:
    cluster_namespace: str = "keda"
    docs: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def scaled(self, namespace: str, name: str) -> Sequence[Mapping[str, Any]]:
        return [d for d in self.docs if d["kind"] in ("ScaledJob", "ScaledObject")
                and d["metadata"]["namespace"] == namespace and d["metadata"]["name"] == name]  # fmt: skip

    def _find(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        for d in self.docs:
            meta = d["metadata"]
            if (
                d["kind"] == kind
                and meta["name"] == name
                and meta.get("namespace", "") == namespace
            ):
                return d
        return None

    def trigger_authentication(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._find("TriggerAuthentication", namespace, name)

    def cluster_trigger_authentication(self, name: str) -> Mapping[str, Any] | None:
        return self._find("ClusterTriggerAuthentication", "", name)

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        store = self.secrets if kind == "Secret" else self.configmaps
        return store.get((namespace, name))

    def add_trigger(
        self, namespace: str, name: str, metadata: Mapping[str, str], auth: Mapping[str, str],
        *, kind: str = "TriggerAuthentication", auth_name: str = "",
    ) -> None:  # fmt: skip
        """A ScaledJob trigger with this metadata whose authenticationRef gives ``auth``
        (from a Secret of the same name, one key per parameter)."""
        auth_name = auth_name or f"auth-{len(self.docs)}"
        where = self.cluster_namespace if kind == "ClusterTriggerAuthentication" else namespace
        self.secrets[(where, auth_name)] = dict(auth)
        self.docs.append({
            "kind": kind,
            "metadata": {"name": auth_name, **({} if where != namespace else {"namespace": namespace})},
            "spec": {"secretTargetRef": [
                {"parameter": p, "name": auth_name, "key": p} for p in auth]},
        })  # fmt: skip
        job = next(iter(self.scaled(namespace, name)), None)
        if job is None:
            job = {"kind": "ScaledJob", "metadata": {"namespace": namespace, "name": name},
                   "spec": {"triggers": []}}  # fmt: skip
            self.docs.append(job)
        job["spec"]["triggers"].append({
            "type": "external", "metadata": dict(metadata),
            "authenticationRef": {"name": auth_name, "kind": kind},
        })  # fmt: skip
