"""Credentials kept on the scaler and selected by credentialsRef."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.credentials import CredentialStore
from scaler.errors import MetadataError, PolicyError
from scaler.metadata import Secret
from scaler.registry import Triggers


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
    mounted_secret(
        tmp_path, "redis-main", namespaces="team-a", address="redis:6379", password="s3cret",
        username="app",
    )  # fmt: skip
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(tmp_path))
    trigger = triggers.parse(
        {
            "scalerType": "redis",
            "listName": "jobs",
            "credentialsRef": "redis-main",
            "username": "override",
        },
        "team-a",
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
    mounted_secret(tmp_path, "bad", namespaces="*", address="not-an-address", password="hunter2")
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(tmp_path))
    with pytest.raises(MetadataError) as err:
        triggers.parse({"scalerType": "redis", "listName": "jobs", "credentialsRef": "bad"})
    assert '"address" value "not-an-address"' in err.value.message
    assert "hunter2" not in err.value.message


# -- a credential set is bound to its namespaces and to its broker ----------------

REDIS = {"scalerType": "redis", "listName": "jobs", "credentialsRef": "team-a-redis"}


def team_a(root: Path, **extra: str) -> Triggers:
    mounted_secret(
        root, "team-a-redis", namespaces="team-a, team-a-batch", address="redis.team-a:6379",
        password="team-a-password", **extra,
    )  # fmt: skip
    return Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(root))


@pytest.mark.parametrize("namespace", ["team-a", "team-a-batch"])
def test_a_listed_namespace_uses_the_set(tmp_path: Path, namespace: str) -> None:
    trigger = team_a(tmp_path).parse(REDIS, namespace)
    assert trigger.query.conn.addresses == (("redis.team-a", 6379),)


def test_another_namespace_is_refused_naming_the_set_and_the_namespace(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        team_a(tmp_path).parse(REDIS, "mallory")
    assert err.value.code == "PERMISSION_DENIED"
    assert 'namespace "mallory" may not use credential set "team-a-redis"' in err.value.message
    assert "team-a-password" not in err.value.message


def test_a_set_without_a_namespaces_file_is_refused(tmp_path: Path) -> None:
    mounted_secret(tmp_path, "open", address="redis:6379", password="p")
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(tmp_path))
    with pytest.raises(PolicyError, match='credential set "open" has no "namespaces" file'):
        triggers.parse({**REDIS, "credentialsRef": "open"}, "team-a")


@pytest.mark.parametrize(
    "key",
    ["address", "addressFromEnv", "addresses", "host", "hostFromEnv", "hosts", "port", "ports"],
)
def test_the_trigger_cannot_send_the_sets_password_elsewhere(tmp_path: Path, key: str) -> None:
    """Row 1 of the security review: credentialsRef + address: <my server>."""
    with pytest.raises(PolicyError) as err:
        team_a(tmp_path).parse({**REDIS, key: "127.0.0.1:6399"}, "team-a")
    assert f'parameter "{key}" may not be set with credentialsRef "team-a-redis"' in (
        err.value.message
    )


def test_a_transport_key_the_set_defines_is_locked(tmp_path: Path) -> None:
    triggers = team_a(tmp_path, enableTLS="true")
    with pytest.raises(PolicyError, match='parameter "enableTLS" may not be false'):
        triggers.parse({**REDIS, "enableTLS": "false"}, "team-a")
    assert triggers.parse(REDIS, "team-a").query.conn.tls is True


def test_the_trigger_narrows_what_it_reads(tmp_path: Path) -> None:
    trigger = team_a(tmp_path).parse({**REDIS, "listName": "other", "databaseIndex": "3"}, "team-a")
    assert trigger.query.key == "other"
    assert trigger.query.conn.database == 3


def test_a_redis_set_without_an_address_is_refused(tmp_path: Path) -> None:
    mounted_secret(tmp_path, "pw-only", namespaces="*", password="p")
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, credentials=CredentialStore(tmp_path))
    with pytest.raises(PolicyError, match='credential set "pw-only" names no broker to go to'):
        triggers.parse({**REDIS, "credentialsRef": "pw-only"}, "team-a")


def test_rabbitmq_and_sqs_sets_lock_their_host_endpoint_and_role(tmp_path: Path) -> None:
    from scaler.brokers.rabbitmq.client import RabbitAdapter
    from scaler.brokers.sqs.client import SqsAdapter

    mounted_secret(tmp_path, "rabbit", namespaces="*", host="amqp://u:p@rabbit.data:5672/")
    mounted_secret(
        tmp_path, "aws", namespaces="*", awsAccessKeyID="AKIAEXAMPLE", awsSecretAccessKey="s",
        awsRoleArn="arn:aws:iam::123456789012:role/reader",
    )  # fmt: skip
    triggers = Triggers(
        {"rabbitmq": RabbitAdapter(timeout=1), "sqs": SqsAdapter(timeout=1)},
        credentials=CredentialStore(tmp_path),
    )
    rabbit = {"scalerType": "rabbitmq", "queueName": "q", "credentialsRef": "rabbit"}
    assert triggers.parse(rabbit, "x").query.server.display == "amqp://rabbit.data:5672/"
    with pytest.raises(PolicyError, match='"host" may not be set'):
        triggers.parse({**rabbit, "host": "amqp://127.0.0.1:5999/"}, "x")
    sqs = {
        "scalerType": "aws-sqs-queue", "queueURL": "jobs", "awsRegion": "eu-west-1",
        "credentialsRef": "aws",
    }  # fmt: skip
    identity = triggers.parse(sqs, "x").query.identity
    assert identity.role_arn == "arn:aws:iam::123456789012:role/reader"
    assert identity.secret_access_key == Secret("s")
    for key, value in (("awsEndpoint", "http://127.0.0.1:5999"),
                       ("awsRoleArn", "arn:aws:iam::123456789012:role/admin")):  # fmt: skip
        with pytest.raises(PolicyError, match=f'"{key}" may not be set'):
            triggers.parse({**sqs, key: value}, "x")
