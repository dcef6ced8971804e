"""The Redis adapter against real redis-server processes (standalone, password,
cluster, sentinel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.errors import (
    BrokerAuthError,
    BrokerPermissionError,
    BrokerUnavailable,
    MetadataError,
    QueueNotFound,
    ScalerError,
    UnsupportedState,
)
from scaler.registry import Triggers
from tests.brokers import RedisCluster, RedisProcess, RedisSentinel
from tests.conftest import REDIS_PASSWORD, evaluate


@pytest.fixture
async def triggers() -> AsyncIterator[Triggers]:
    t = Triggers({"redis": RedisAdapter(timeout=2)})
    yield t
    await t.aclose()


async def value(triggers: Triggers, metadata: dict[str, str]) -> float:
    return (await evaluate(triggers, metadata))[0]


def list_meta(server: RedisProcess, **extra: str) -> dict[str, str]:
    return {"scalerType": "redis", "address": server.address, "listName": "jobs", **extra}


def stream_meta(server: RedisProcess, **extra: str) -> dict[str, str]:
    return {"scalerType": "redis-streams", "address": server.address, "stream": "events", **extra}


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        (lambda c: c.rpush("jobs", *range(4)), 4),  # list: LLEN
        (lambda c: c.zadd("jobs", {"a": 1, "b": 2, "c": 3}), 3),  # sorted set: ZCARD
        (lambda c: c.sadd("jobs", "a", "b"), 2),  # set: SCARD
        (lambda c: c.hset("jobs", mapping={"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}), 5),  # HLEN
        (lambda c: None, 0),  # missing key: LLEN of nothing
    ],
    ids=["list", "zset", "set", "hash", "missing"],
)
async def test_key_types_are_counted_like_keda(
    triggers: Triggers, redis_db: RedisProcess, fill: object, expected: int
) -> None:
    fill(redis_db.client())  # type: ignore[operator]
    assert await value(triggers, list_meta(redis_db)) == expected


async def test_other_key_types_are_failed_precondition(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    redis_db.client().set("jobs", "a string")
    with pytest.raises(UnsupportedState, match=r'key "jobs" .* is a string'):
        await value(triggers, list_meta(redis_db))


async def test_database_index_selects_the_database(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    redis_db.client(db=3).rpush("jobs", 1, 2, 3)
    assert await value(triggers, list_meta(redis_db, databaseIndex="3")) == 3
    assert await value(triggers, list_meta(redis_db)) == 0


async def test_host_and_port_keys_work_like_address(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    redis_db.client().rpush("jobs", 1, 2)
    meta = {"scalerType": "redis", "host": "127.0.0.1", "port": str(redis_db.port)}
    assert await value(triggers, {**meta, "listName": "jobs"}) == 2
    from_env = {"scalerType": "redis", "addressFromEnv": redis_db.address, "listName": "jobs"}
    assert await value(triggers, from_env) == 2


async def test_stream_length_mode(triggers: Triggers, redis_db: RedisProcess) -> None:
    for i in range(3):
        redis_db.client().xadd("events", {"n": i})
    assert await value(triggers, stream_meta(redis_db)) == 3


async def test_stream_missing_key_counts_zero_in_length_and_lag_modes(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    assert await value(triggers, stream_meta(redis_db)) == 0
    lag = stream_meta(redis_db, consumerGroup="workers", lagCount="2")
    assert await value(triggers, lag) == 0


def _stream_with_group(server: RedisProcess, entries: int, delivered: int) -> None:
    client = server.client()
    for i in range(entries):
        client.xadd("events", {"n": i})
    client.xgroup_create("events", "workers", id="0")
    if delivered:
        client.xreadgroup("workers", "w1", {"events": ">"}, count=delivered)


async def test_stream_pending_entries_mode(triggers: Triggers, redis_db: RedisProcess) -> None:
    _stream_with_group(redis_db, entries=5, delivered=2)
    meta = stream_meta(redis_db, consumerGroup="workers")  # no lagCount: pending mode
    assert await value(triggers, meta) == 2
    redis_db.client().xack("events", "workers", redis_db.client().xrange("events")[0][0])
    assert await value(triggers, meta) == 1


async def test_stream_lag_mode(triggers: Triggers, redis_db: RedisProcess) -> None:
    _stream_with_group(redis_db, entries=5, delivered=2)
    meta = stream_meta(redis_db, consumerGroup="workers", lagCount="1")
    assert await value(triggers, meta) == 3  # 5 entries, 2 delivered to the group


async def test_stream_lag_mode_missing_group_counts_stream_length(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    _stream_with_group(redis_db, entries=4, delivered=0)
    meta = stream_meta(redis_db, consumerGroup="nobody", lagCount="1")
    assert await value(triggers, meta) == 4


async def test_stream_pending_mode_missing_group_is_not_found(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    redis_db.client().xadd("events", {"n": 1})
    meta = stream_meta(redis_db, consumerGroup="nobody")
    with pytest.raises(QueueNotFound, match='consumer group "nobody" does not exist'):
        await value(triggers, meta)


@pytest.mark.parametrize(
    "extra", [{}, {"consumerGroup": "g"}, {"consumerGroup": "g", "lagCount": "1"}]
)
async def test_a_stream_trigger_on_a_list_is_failed_precondition(
    triggers: Triggers, redis_db: RedisProcess, extra: dict[str, str]
) -> None:
    redis_db.client().rpush("events", 1)
    with pytest.raises(UnsupportedState, match="redis-streams ones streams"):
        await value(triggers, stream_meta(redis_db, **extra))


async def test_database_out_of_range_names_the_key(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    with pytest.raises(MetadataError, match=r'"databaseIndex" value "99" is out of range') as err:
        await value(triggers, list_meta(redis_db, databaseIndex="99"))
    assert err.value.code == "INVALID_ARGUMENT"


async def test_acl_user_without_the_command_is_permission_denied(
    triggers: Triggers, redis_db: RedisProcess
) -> None:
    redis_db.client().execute_command(
        "ACL", "SETUSER", "limited", "on", ">limited-pw", "~*", "+ping", "+type", "-llen"
    )
    try:
        with pytest.raises(BrokerPermissionError, match="the user may not run the command"):
            await value(
                triggers, list_meta(redis_db, username="limited", passwordFromEnv="limited-pw")
            )
    finally:
        redis_db.client().execute_command("ACL", "DELUSER", "limited")


async def test_password_server(triggers: Triggers, redis_password_server: RedisProcess) -> None:
    redis_password_server.client().delete("jobs")
    redis_password_server.client().rpush("jobs", 1, 2, 3)
    good = list_meta(redis_password_server, passwordFromEnv=REDIS_PASSWORD)
    assert await value(triggers, good) == 3
    plain = list_meta(redis_password_server, password=REDIS_PASSWORD)
    assert await value(triggers, plain) == 3


@pytest.mark.parametrize("password", [None, "wrong-password"])
async def test_refused_credentials_are_auth_errors_without_the_secret(
    triggers: Triggers, redis_password_server: RedisProcess, password: str | None
) -> None:
    meta = list_meta(redis_password_server)
    if password:
        meta["password"] = password
    with pytest.raises(BrokerAuthError) as err:
        await value(triggers, meta)
    assert redis_password_server.address in str(err.value)
    assert REDIS_PASSWORD not in str(err.value)
    if password:
        assert password not in str(err.value)


async def test_tls_redis_with_enable_tls(
    triggers: Triggers, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.certs import make_pki

    pki = make_pki(tmp_path_factory.mktemp("redis-pki"))
    server = RedisProcess(
        tmp_path_factory.mktemp("redis-tls"), tls=(pki.server_cert, pki.server_key, pki.ca)
    )
    server.start()
    try:
        server.client().rpush("jobs", 1, 2, 3, 4)
        # Our test CA is not in the system store: only unsafeSsl (no verification) connects.
        assert await value(triggers, list_meta(server, enableTLS="true", unsafeSsl="true")) == 4
        with pytest.raises(BrokerUnavailable, match="certificate verify failed"):
            await value(triggers, list_meta(server, enableTLS="true"))
        with pytest.raises(BrokerUnavailable):  # plaintext to a TLS port
            await value(triggers, list_meta(server))
    finally:
        server.stop()


async def test_nothing_listening_is_unavailable(triggers: Triggers) -> None:
    from tests.brokers import free_port

    meta = {"scalerType": "redis", "address": f"127.0.0.1:{free_port()}", "listName": "jobs"}
    with pytest.raises(BrokerUnavailable, match=r"cannot reach Redis 127\.0\.0\.1"):
        await value(triggers, meta)


async def test_cluster_lists_and_streams(triggers: Triggers, redis_cluster: RedisCluster) -> None:
    client = redis_cluster.client()
    names = [f"jobs-{i}" for i in range(6)]  # spread over slots on different nodes
    for i, name in enumerate(names):
        client.delete(name)
        client.rpush(name, *range(i + 1))
    base = {
        "scalerType": "redis-cluster",
        "addresses": redis_cluster.addresses,
        "passwordFromEnv": REDIS_PASSWORD,
    }
    for i, name in enumerate(names):
        assert await value(triggers, {**base, "listName": name}) == i + 1
    client.delete("cluster-events")
    client.xadd("cluster-events", {"a": 1})
    streams = {**base, "scalerType": "redis-cluster-streams"}
    assert await value(triggers, {**streams, "stream": "cluster-events"}) == 1
    # hosts + ports form, as KEDA accepts
    hosts = ",".join("127.0.0.1" for _ in redis_cluster.nodes)
    ports = ",".join(str(n.port) for n in redis_cluster.nodes)
    by_host = {"scalerType": "redis-cluster", "hosts": hosts, "ports": ports, "listName": names[2],
               "password": REDIS_PASSWORD}  # fmt: skip
    assert await value(triggers, by_host) == 3


@pytest.mark.parametrize("password", [None, "wrong-cluster-pw"])
async def test_cluster_refusing_credentials_is_an_auth_error(
    triggers: Triggers, redis_cluster: RedisCluster, password: str | None
) -> None:
    meta = {"scalerType": "redis-cluster", "addresses": redis_cluster.addresses, "listName": "q"}
    if password:
        meta["passwordFromEnv"] = password
    with pytest.raises(BrokerAuthError, match="Redis cluster") as err:
        await value(triggers, meta)
    assert REDIS_PASSWORD not in str(err.value)
    if password:
        assert password not in str(err.value)


async def test_sentinel_finds_the_master(triggers: Triggers, redis_sentinel: RedisSentinel) -> None:
    master = redis_sentinel.master.client()
    master.delete("jobs")
    master.rpush("jobs", "a", "b")
    meta = {
        "scalerType": "redis-sentinel",
        "addresses": redis_sentinel.address,
        "sentinelMaster": RedisSentinel.MASTER,
        "listName": "jobs",
    }
    assert await value(triggers, meta) == 2
    wrong = {**meta, "sentinelMaster": "no-such-master"}
    with pytest.raises(BrokerUnavailable, match=r'could name a master "no-such-master"') as err:
        await value(triggers, wrong)
    assert len(str(err.value)) < 300  # the cause, not a repr of every sentinel client


async def test_errors_are_scaler_errors_with_grpc_codes() -> None:
    """Every adapter error maps onto a real grpc.StatusCode name."""
    import grpc

    def leaves(cls: type[ScalerError]) -> list[type[ScalerError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in leaves(sub))]

    for cls in leaves(ScalerError):
        assert grpc.StatusCode[cls.code] is not None, cls


async def test_idle_connection_pools_are_closed(redis_password_server: RedisProcess) -> None:
    """Rotated credentials make a new server identity; the old pool must not linger."""
    server = redis_password_server
    admin = server.client()
    now = [0.0]

    def ours() -> int:
        return sum(1 for c in admin.client_list() if c.get("name") == "keda-queue-scaler")

    async def until_ours(expected: int) -> None:
        # The server drops a closed connection from CLIENT LIST when it reads the FIN,
        # shortly after our side closed it: wait for that, within a bound.
        async with asyncio.timeout(10):
            while ours() != expected:
                await asyncio.sleep(0.02)

    triggers = Triggers({"redis": RedisAdapter(timeout=2, idle_seconds=300, clock=lambda: now[0])})
    try:
        assert await value(triggers, list_meta(server, password=REDIS_PASSWORD)) >= 0
        assert ours() == 1
        now[0] += 301
        # Another identity (the same password under another user name works on a default-user
        # server: same server, new pool) is used; the idle one is closed meanwhile.
        assert (
            await value(triggers, list_meta(server, password=REDIS_PASSWORD, username="default"))
            >= 0
        )
        await until_ours(1)
    finally:
        await triggers.aclose()
    await until_ours(0)


async def test_sentinel_and_master_with_passwords(
    triggers: Triggers, redis_sentinel_auth: RedisSentinel
) -> None:
    master = redis_sentinel_auth.master.client()
    master.delete("jobs")
    master.rpush("jobs", "a", "b", "c")
    meta = {
        "scalerType": "redis-sentinel",
        "addresses": redis_sentinel_auth.address,
        "sentinelMaster": RedisSentinel.MASTER,
        "sentinelPasswordFromEnv": "sentinel-" + REDIS_PASSWORD,
        "passwordFromEnv": REDIS_PASSWORD,
        "listName": "jobs",
    }
    assert await value(triggers, meta) == 3
    with pytest.raises(BrokerAuthError, match="sentinelPassword") as err:  # sentinel refuses
        await value(triggers, {**meta, "sentinelPasswordFromEnv": "wrong-sentinel-pw"})
    assert "wrong-sentinel-pw" not in str(err.value)
    with pytest.raises(BrokerAuthError):  # the master refuses a wrong password
        await value(triggers, {**meta, "passwordFromEnv": "wrong-master-pw"})
