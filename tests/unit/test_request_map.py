"""Triggers' request map: a request answered before is found by its bytes alone.

What it may hold is a function of the request's bytes and nothing else: never a
refusal, never a trigger that read a credential set (files rotate) or, with
--kubernetes, an authenticationRef (objects change), and never more than the bound."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.credentials import CredentialStore
from scaler.errors import MetadataError, PolicyError
from scaler.metadata import Secret
from scaler.proto import externalscaler_pb2 as pb
from scaler.registry import Triggers
from tests.unit.test_credentials import Clock, mounted_secret

ADDR = {"address": "127.0.0.1:6379"}


class Unread(Mapping[str, str]):
    """Metadata that fails the test when read: a hit must not look at it."""

    def __getitem__(self, key: str) -> str:
        raise AssertionError(f"metadata read ({key!r})")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("metadata read")

    def __len__(self) -> int:
        raise AssertionError("metadata read")


def ref(namespace: str = "team-a", name: str = "job", **metadata: str) -> pb.ScaledObjectRef:
    given = {"scalerType": "redis", "listName": "jobs", **ADDR, **metadata}
    return pb.ScaledObjectRef(namespace=namespace, name=name, scalerMetadata=given)


def wire(r: pb.ScaledObjectRef) -> bytes:
    return r.SerializeToString(deterministic=True)


def parse(triggers: Triggers, r: pb.ScaledObjectRef, metadata: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
    given = r.scalerMetadata if metadata is None else metadata
    return triggers.parse(given, r.namespace, r.name, wire=wire(r))


def test_a_request_seen_before_is_answered_without_reading_its_metadata() -> None:
    unknown: list[tuple[str, str]] = []
    triggers = Triggers(
        {"redis": RedisAdapter(timeout=1)},
        on_unknown=lambda ns, name, kind, keys: unknown.append((ns, name)),
    )
    first = parse(triggers, ref(listLenght="3"))
    # The same request with its map built in another order: the same bytes.
    again = pb.ScaledObjectRef(namespace="team-a", name="job")
    for key, value in reversed(list(ref(listLenght="3").scalerMetadata.items())):
        again.scalerMetadata[key] = value
    assert parse(triggers, again, Unread()) is first
    assert unknown == [("team-a", "job")]  # the typo is reported once, as before
    # Another ScaledJob or namespace with the same metadata is its own request.
    for other in (ref("team-b", listLenght="3"), ref(name="job-2", listLenght="3")):
        with pytest.raises(AssertionError, match="metadata read"):
            parse(triggers, other, Unread())
        assert parse(triggers, other).query == first.query


def test_refusals_are_never_held() -> None:
    triggers = Triggers({"redis": RedisAdapter(timeout=1)})
    bad = ref(listLength="x")
    for _ in range(2):
        with pytest.raises(MetadataError, match="listLength"):
            parse(triggers, bad)
    with pytest.raises(AssertionError, match="metadata read"):
        parse(triggers, bad, Unread())


def test_the_map_is_bounded_by_cache_size() -> None:
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, cache_size=2)
    parse(triggers, ref(name="a"))
    parse(triggers, ref(name="b"))
    parse(triggers, ref(name="a"), Unread())  # a hit, and now the most recent
    parse(triggers, ref(name="c"))  # evicts b, the least recently used
    parse(triggers, ref(name="a"), Unread())
    with pytest.raises(AssertionError, match="metadata read"):
        parse(triggers, ref(name="b"), Unread())


def test_a_credential_set_is_read_again_on_every_request(tmp_path: Path) -> None:
    mounted_secret(tmp_path, "redis-main", namespaces="team-a", address="redis:6379",
                   password="one")  # fmt: skip
    clock = Clock()
    store = CredentialStore(tmp_path, refresh=10, clock=clock)
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=store)
    r = pb.ScaledObjectRef(
        namespace="team-a", name="job",
        scalerMetadata={"scalerType": "redis", "listName": "jobs", "credentialsRef": "redis-main"},
    )  # fmt: skip
    assert parse(triggers, r).query.conn.password == Secret("one")
    with pytest.raises(AssertionError, match="metadata read"):
        parse(triggers, r, Unread())
    (tmp_path / "redis-main" / "password").unlink()
    (tmp_path / "redis-main" / "..2026_11_26_10_00_00.000" / "password").write_text("two\n")
    (tmp_path / "redis-main" / "password").symlink_to(
        Path("..2026_11_26_10_00_00.000") / "password"
    )
    clock.now = 11
    assert parse(triggers, r).query.conn.password == Secret("two")
    # The same metadata from a namespace the set does not list is refused each time.
    other = pb.ScaledObjectRef(namespace="team-b", name="job", scalerMetadata=r.scalerMetadata)
    for _ in range(2):
        with pytest.raises(PolicyError, match="may not use credential set"):
            parse(triggers, other)


class NoObjects:
    """--kubernetes with nothing in the watches: no ScaledJob, so no authenticationRef."""

    cluster_namespace = "keda"

    def scaled(self, namespace: str, name: str) -> list[dict[str, object]]:
        return []

    def trigger_authentication(self, namespace: str, name: str) -> None:
        return None

    def cluster_trigger_authentication(self, name: str) -> None:
        return None

    def data(self, kind: str, namespace: str, name: str) -> None:
        return None

    def watches(self, namespace: str) -> bool:
        return True


def test_with_kubernetes_every_request_is_resolved_again() -> None:
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, kube=NoObjects())  # type: ignore[arg-type]
    parse(triggers, ref())
    with pytest.raises(AssertionError, match="metadata read"):
        parse(triggers, ref(), Unread())
