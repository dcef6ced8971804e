"""The watch cache's bookkeeping, driven through its handlers (the end-to-end suite
drives it with a real API server): only Secrets an object names are kept, a newly
named one is fetched in the background, deletions and refusals are said."""

from __future__ import annotations

import base64
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from scaler.errors import AuthError, KubeNotReady
from scaler.kube.cache import KubeObjects


def secret(ns: str, name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"namespace": ns, "name": name}, "data": encoded}


def trigger_auth(ns: str, name: str, secret_name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {"secretTargetRef": [{"parameter": "password", "name": secret_name, "key": "pw"}]},
    }


class Objects:
    def __init__(self) -> None:
        from kubernetes import client

        self.kube = KubeObjects(client.ApiClient())
        self.fetched: list[tuple[str, str, str]] = []
        self.kube._fetcher.submit = lambda fn, key: self.fetched.append(key)  # type: ignore[method-assign,assignment,misc]
        self.by_name = {r.what: r for r in self.kube.reflectors}

    def replace(self, what: str, items: list[dict[str, Any]]) -> None:
        self.by_name[what]._replace(items, True)
        self.by_name[what].synced.set()

    def apply(self, what: str, event: str, doc: dict[str, Any]) -> None:
        self.by_name[what]._apply(event, doc)


def test_only_named_secrets_are_kept_and_a_new_name_is_fetched() -> None:
    o = Objects()
    o.replace(
        "Secrets in all namespaces",
        [secret("team", "named", pw="p1"), secret("team", "other", pw="x")],
    )
    o.replace("triggerauthentications in all namespaces", [trigger_auth("team", "ta", "named")])
    # Listed before anything named it: fetched once in the background, never in a call.
    assert o.fetched == [("Secret", "team", "named")]
    with pytest.raises(KubeNotReady, match="loading Secret team/named"):
        o.kube.data("Secret", "team", "named")
    o.apply("Secrets in all namespaces", "MODIFIED", secret("team", "named", pw="p2"))
    o.apply("Secrets in all namespaces", "MODIFIED", secret("team", "other", pw="y"))
    assert o.kube.data("Secret", "team", "named") == {"pw": "p2"}  # a rotation arrives
    assert ("Secret", "team", "other") not in o.kube._data  # never named: not kept
    o.apply("Secrets in all namespaces", "DELETED", secret("team", "named"))
    assert o.kube.data("Secret", "team", "named") is None  # said to be gone, not loading


def test_a_relisting_keeps_named_secrets_current() -> None:
    o = Objects()
    o.replace("triggerauthentications in all namespaces", [trigger_auth("team", "ta", "named")])
    o.replace("Secrets in all namespaces", [secret("team", "named", pw="p1")])
    assert o.kube.data("Secret", "team", "named") == {"pw": "p1"}
    o.replace("Secrets in all namespaces", [])
    assert o.kube.data("Secret", "team", "named") is None


def test_a_refused_read_names_the_secret_and_the_remedy() -> None:
    o = Objects()
    o.kube._refused[("Secret", "team", "locked")] = "forbidden"
    with pytest.raises(AuthError, match=r"may not read Secret team/locked \(forbidden\)"):
        o.kube.data("Secret", "team", "locked")


def test_calls_wait_for_the_first_listing_and_say_what_is_missing() -> None:
    o = Objects()
    with pytest.raises(KubeNotReady, match="not yet listed scaledjobs in all namespaces"):
        o.kube.scaled("team", "job")
    for reflector in o.kube.reflectors:
        reflector.synced.set()
    assert o.kube.scaled("team", "job") == []


def test_a_scaledjob_with_an_authentication_ref_names_its_containers_sources() -> None:
    from scaler.kube.cache import references

    container = {
        "envFrom": [{"secretRef": {"name": "all-secret"}}, {"configMapRef": {"name": "all-cm"}}],
        "env": [{"name": "A", "value": "literal"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "one-secret", "key": "k"}}},
                {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "one-cm", "key": "k"}}}],
    }  # fmt: skip
    job = {
        "kind": "ScaledJob", "metadata": {"namespace": "team", "name": "job"},
        "spec": {"jobTargetRef": {"template": {"spec": {"containers": [container]}}},
                 "triggers": [{"type": "external", "authenticationRef": {"name": "ta"}}]},
    }  # fmt: skip
    assert references(job, "keda") == {
        ("Secret", "team", "all-secret"), ("ConfigMap", "team", "all-cm"),
        ("Secret", "team", "one-secret"), ("ConfigMap", "team", "one-cm"),
    }  # fmt: skip
    job["spec"]["triggers"] = [{"type": "external"}]  # no authenticationRef: nothing to read
    assert references(job, "keda") == set()
