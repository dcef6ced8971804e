"""Credentials kept on the scaler and selected by credentialsRef."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.adapters.redis import RedisAdapter
from scaler.credentials import CredentialStore
from scaler.errors import MetadataError
from scaler.metadata import Secret
from scaler.triggers import Triggers


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def mounted_secret(root: Path, name: str, **keys: str) -> None:
    """The layout Kubernetes gives a Secret volume: ..data links and one file per key."""
    folder = root / name
    data = folder / "..2026_11_26_10_00_00.000"
    data.mkdir(parents=True)
    for key, value in keys.items():
        (data / key).write_text(value + "\n")
        (folder / key).symlink_to(Path("..2026_11_26_10_00_00.000") / key)
    (folder / "..data").symlink_to(data.name)


def test_keys_fill_the_trigger_as_from_env_and_the_trigger_wins(tmp_path: Path) -> None:
    mounted_secret(tmp_path, "redis-main", address="redis:6379", password="s3cret", username="app")
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(tmp_path))
    trigger = triggers.parse(
        {
            "scalerType": "redis",
            "listName": "jobs",
            "credentialsRef": "redis-main",
            "username": "override",
        }
    )
    conn = trigger.query.conn
    assert conn.addresses == (("redis", 6379),)
    assert conn.password == Secret("s3cret")
    assert conn.username == "override"  # the trigger's own key wins


def test_rotation_is_seen_after_the_refresh(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "password").write_text("one")
    clock = Clock()
    store = CredentialStore(tmp_path, refresh=10, clock=clock)
    assert store.get("r") == {"password": "one"}
    (tmp_path / "r" / "password").write_text("two")
    assert store.get("r") == {"password": "one"}  # cached
    clock.now = 11
    assert store.get("r") == {"password": "two"}


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("missing", "no credentials of that name"),
        ("../etc", "must be a name of letters"),
        ("a/b", "must be a name of letters"),
        (".hidden", "must be a name of letters"),
    ],
)
def test_bad_references(tmp_path: Path, ref: str, message: str) -> None:
    with pytest.raises(MetadataError, match=message):
        CredentialStore(tmp_path).get(ref)


def test_a_reference_without_a_store_is_refused() -> None:
    triggers = Triggers({"redis": RedisAdapter(timeout=1)})
    with pytest.raises(MetadataError, match="--credentials-dir"):
        triggers.parse(
            {"scalerType": "redis", "listName": "jobs", "address": "r:1", "credentialsRef": "x"}
        )


def test_secret_values_are_not_in_errors(tmp_path: Path) -> None:
    mounted_secret(tmp_path, "bad", address="not-an-address", password="hunter2")
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(tmp_path))
    with pytest.raises(MetadataError) as err:
        triggers.parse({"scalerType": "redis", "listName": "jobs", "credentialsRef": "bad"})
    assert '"address" value "not-an-address"' in err.value.message
    assert "hunter2" not in err.value.message
