"""The watch cache's bookkeeping, driven through its handlers (the end-to-end suite
drives it with a real API server): Secrets are watched as metadata only, only those an
object names are read (by name, in the background, again at each new version),
deletions and refusals are said."""

from __future__ import annotations

import base64
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from scaler.errors import AuthError, KubeNotReady
from scaler.kube.cache import KubeObjects


def secret(ns: str, name: str, version: str = "1", **data: str) -> dict[str, Any]:
    """A Secret as a read by name returns it."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": version},
            "data": encoded}  # fmt: skip


def meta(ns: str, name: str, version: str = "1") -> dict[str, Any]:
    """A Secret as the metadata-only list and watch send it: no data."""
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"namespace": ns, "name": name, "resourceVersion": version}}  # fmt: skip


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


def test_secrets_and_config_maps_are_watched_as_metadata_only() -> None:
    """The API server leaves their data out: a cluster's Secrets never sit in memory,
    not even while one list of them is parsed."""
    o = Objects()
    for what in ("Secrets in all namespaces", "ConfigMaps in all namespaces"):
        listing = o.by_name[what]._kwargs()["_headers"]
        watching = o.by_name[what]._kwargs(watching=True)["_headers"]
        assert listing == {
            "Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        }
        assert watching == {
            "Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
        }
    assert "_headers" not in o.by_name["triggerauthentications in all namespaces"]._kwargs()


def test_only_named_secrets_are_read_by_name_and_each_new_version_again() -> None:
    o = Objects()
    o.replace("Secrets in all namespaces", [meta("team", "named"), meta("team", "other")])
    o.replace("triggerauthentications in all namespaces", [trigger_auth("team", "ta", "named")])
    # Named after the listing: read once in the background, never in a call.
    assert o.fetched == [("Secret", "team", "named")]
    with pytest.raises(KubeNotReady, match="loading Secret team/named"):
        o.kube.data("Secret", "team", "named")
    o.kube._fetched(("Secret", "team", "named"), secret("team", "named", "1", pw="p1"), None)
    assert o.kube.data("Secret", "team", "named") == {"pw": "p1"}
    # A rotation: the watch reports version 2 (no data); it is read by name again.
    o.apply("Secrets in all namespaces", "MODIFIED", meta("team", "named", "2"))
    o.apply("Secrets in all namespaces", "MODIFIED", meta("team", "other", "2"))
    assert o.fetched[1:] == [("Secret", "team", "named")]
    assert o.kube.data("Secret", "team", "named") == {"pw": "p1"}  # until the read ends
    o.kube._fetched(("Secret", "team", "named"), secret("team", "named", "2", pw="p2"), None)
    assert o.kube.data("Secret", "team", "named") == {"pw": "p2"}
    assert ("Secret", "team", "other") not in o.kube._data  # never named: never read
    o.apply("Secrets in all namespaces", "DELETED", meta("team", "named", "3"))
    assert o.kube.data("Secret", "team", "named") is None  # said to be gone, not loading


def test_a_read_older_than_the_watch_is_read_again() -> None:
    o = Objects()
    o.replace("triggerauthentications in all namespaces", [trigger_auth("team", "ta", "named")])
    o.replace("Secrets in all namespaces", [meta("team", "named", "5")])
    o.kube._fetching.clear()
    o.fetched.clear()
    o.kube._fetched(("Secret", "team", "named"), secret("team", "named", "4", pw="old"), None)
    assert o.fetched == [("Secret", "team", "named")]  # version 5 was seen: read again


def test_a_relisting_keeps_named_secrets_current() -> None:
    o = Objects()
    o.replace("triggerauthentications in all namespaces", [trigger_auth("team", "ta", "named")])
    o.kube._fetched(("Secret", "team", "named"), secret("team", "named", "1", pw="p1"), None)
    o.fetched.clear()
    o.replace("Secrets in all namespaces", [meta("team", "named", "1")])
    assert o.fetched == []  # the version held: nothing to read
    assert o.kube.data("Secret", "team", "named") == {"pw": "p1"}
    o.replace("Secrets in all namespaces", [])
    assert o.kube.data("Secret", "team", "named") is None


def test_a_missing_secret_is_said_to_be_missing() -> None:
    o = Objects()
    o.replace("triggerauthentications in all namespaces", [trigger_auth("team", "ta", "gone")])
    o.kube._fetched(("Secret", "team", "gone"), None, 404)
    assert o.kube.data("Secret", "team", "gone") is None


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
