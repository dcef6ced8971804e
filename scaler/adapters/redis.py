"""Redis lists and streams: ``redis``, ``redis-cluster``, ``redis-sentinel`` and the
``-streams`` variants, with the metadata keys, defaults and counting rules of KEDA's
built-in triggers (DESIGN §4).

Lists: the key's type picks the count — list or missing key LLEN, sorted set ZCARD,
set SCARD, hash HLEN; any other type is FAILED_PRECONDITION.

Streams, by metadata:
- no ``consumerGroup``: XLEN, target ``streamLength``;
- ``consumerGroup`` and ``lagCount`` != 0: the group's ``lag`` from XINFO GROUPS
  (Redis >= 7; a missing stream counts 0, a missing group counts XLEN), target
  ``lagCount``;
- ``consumerGroup`` and no ``lagCount``: the group's pending entries (XPENDING),
  target ``pendingEntriesCount``.
``activationLagCount`` is the activation threshold in all three modes.

One client (and its connection pool) per server identity — mode, addresses,
database, user, password digest, TLS — opened on first use and closed by
:meth:`RedisAdapter.aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from redis import exceptions as rexc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff

from scaler.adapters import tlsfiles
from scaler.adapters.base import ClientBudget, ClientPool, Trigger, metric_name
from scaler.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerPermissionError,
    BrokerTimeout,
    BrokerUnavailable,
    MetadataError,
    QueueNotFound,
    ScalerError,
    UnsupportedState,
)
from scaler.guard import Destination
from scaler.metadata import (
    Secret,
    TriggerMetadata,
    auth_key,
    fingerprint,
    key,
    non_negative,
    positive,
    secret_key,
)

Mode = Literal["standalone", "cluster", "sentinel"]
_MODES: dict[str, Mode] = {
    "redis": "standalone",
    "redis-cluster": "cluster",
    "redis-sentinel": "sentinel",
    "redis-streams": "standalone",
    "redis-cluster-streams": "cluster",
    "redis-sentinel-streams": "sentinel",
}
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]{1,5})$")


@dataclass(frozen=True)
class RedisConnection:
    """Everything that identifies one Redis server (or cluster / sentinel set)."""

    mode: Mode
    addresses: tuple[tuple[str, int], ...]
    database: int
    username: str
    password: Secret | None
    sentinel_username: str
    sentinel_password: Secret | None
    sentinel_master: str
    tls: bool
    unsafe_ssl: bool
    #: CA, client certificate and key from a TriggerAuthentication (TLS only).
    client_tls: tlsfiles.ClientTls = tlsfiles.ClientTls()

    def describe(self) -> str:
        """Where we read, for error messages (no credentials)."""
        where = ", ".join(f"{h}:{p}" for h, p in self.addresses)
        if self.mode == "sentinel":
            return f'Redis sentinel master "{self.sentinel_master}" via {where}'
        if self.mode == "cluster":
            return f"Redis cluster {where}"
        return f"Redis {where} db {self.database}"

    def destinations(self) -> tuple[Destination, ...]:
        """Where a read dials first (cluster nodes and the sentinels' master are then
        discovered from these, as every Redis client does)."""
        what = "Redis sentinel" if self.mode == "sentinel" else "Redis"
        return tuple(Destination(host, port, what) for host, port in self.addresses)


@dataclass(frozen=True)
class RedisListQuery:
    conn: RedisConnection
    key: str

    def destinations(self) -> tuple[Destination, ...]:
        return self.conn.destinations()


@dataclass(frozen=True)
class RedisStreamQuery:
    conn: RedisConnection
    stream: str
    mode: Literal["length", "pending", "lag"]
    group: str

    def destinations(self) -> tuple[Destination, ...]:
        return self.conn.destinations()


def _parse_address(param: str, text: str) -> tuple[str, int]:
    m = _HOST_PORT.match(text)
    port = int(m["port"]) if m else 0
    if not m or not 1 <= port <= 65535:
        raise MetadataError(
            f'parameter "{param}" value "{text}" must be host:port with a port from 1 to '
            f"65535 (e.g. redis.default.svc.cluster.local:6379)"
        )
    return (m["v6"] or m["host"], port)


@dataclass(frozen=True, kw_only=True)
class RedisConnectionMetadata(TriggerMetadata):
    """Connection keys shared by every Redis scalerType."""

    addresses: tuple[str, ...] = key(
        "address",
        aliases=("addresses",),
        default=(),
        from_env=True,
        doc="host:port, comma-separated for cluster and sentinel",
    )
    hosts: tuple[str, ...] = key(
        "host", aliases=("hosts",), default=(), from_env=True, doc="host name(s), with port(s)"
    )
    ports: tuple[str, ...] = key(
        "port", aliases=("ports",), default=(), from_env=True, doc="port(s), one per host"
    )
    username: str = key("username", default="", from_env=True, doc="ACL user name")
    password: Secret | None = secret_key("password", doc="password (prefer passwordFromEnv)")
    sentinel_username: str = key("sentinelUsername", default="", from_env=True)
    sentinel_password: Secret | None = secret_key("sentinelPassword")
    sentinel_master: str = key("sentinelMaster", default="", from_env=True)
    database_index: int = key("databaseIndex", default=0, check=non_negative)
    enable_tls: bool | None = key("enableTLS", default=None, doc="TLS to Redis")
    unsafe_ssl: bool = key("unsafeSsl", default=False, doc="skip TLS certificate checks")
    tls_param: str = auth_key("tls", secret=False, doc="enable or disable (TriggerAuthentication)")
    ca: Secret | None = auth_key("ca", doc="CA certificate, PEM (TriggerAuthentication)")
    cert: Secret | None = auth_key(
        "Cert", aliases=("cert",), doc="client certificate, PEM (TriggerAuthentication)"
    )
    client_key: Secret | None = auth_key("key", doc="client key, PEM (TriggerAuthentication)")
    key_password: Secret | None = auth_key("keyPassword", doc="the client key's password")

    def validate(self, scaler_type: str) -> None:
        self.connection(scaler_type)

    def connection(self, scaler_type: str) -> RedisConnection:
        """Apply KEDA's connection rules and build the server identity."""
        mode = _MODES[scaler_type]
        if not self.addresses and not self.hosts:
            raise MetadataError(
                'no Redis address given: set "address" (host:port) or "host" and "port" '
                "(or their ...FromEnv forms)"
            )
        if len(self.hosts) != len(self.ports):
            raise MetadataError(
                f'"host" lists {len(self.hosts)} host(s) but "port" lists {len(self.ports)}: '
                "give one port per host"
            )
        addresses = [_parse_address("address", a) for a in self.addresses]
        addresses += [
            _parse_address("host/port", f"{h}:{p}" if ":" not in h else f"[{h}]:{p}")
            for h, p in zip(self.hosts, self.ports, strict=True)
        ]
        if mode == "standalone":
            addresses = addresses[:1]  # KEDA uses the first address for a single server
        if mode == "sentinel" and not self.sentinel_master:
            raise MetadataError(
                f'parameter "sentinelMaster" is required for scalerType "{scaler_type}": '
                "the name of the master set the sentinels monitor"
            )
        # KEDA's SetEnableTLS: enableTLS (metadata) or tls (TriggerAuthentication), not both.
        if self.enable_tls is not None and self.tls_param:
            raise MetadataError(
                'TLS is set twice: "enableTLS" in the trigger and "tls" in its '
                "TriggerAuthentication; keep one"
            )
        tlsfiles.check_tls_param(self.tls_param)
        tls = bool(self.enable_tls) or self.tls_param == "enable"
        if mode == "cluster" and self.database_index != 0:
            raise MetadataError(
                f'parameter "databaseIndex" value "{self.database_index}" must be 0 for '
                f'scalerType "{scaler_type}": Redis Cluster has a single database'
            )
        return RedisConnection(
            mode=mode,
            addresses=tuple(addresses),
            database=self.database_index,
            username=self.username,
            password=self.password,
            sentinel_username=self.sentinel_username,
            sentinel_password=self.sentinel_password,
            sentinel_master=self.sentinel_master,
            tls=tls,
            unsafe_ssl=self.unsafe_ssl,
            client_tls=tlsfiles.ClientTls(
                ca=self.ca, cert=self.cert, key=self.client_key,
                key_password=self.key_password, unsafe=self.unsafe_ssl,
            ) if tls else tlsfiles.ClientTls(),
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RedisListMetadata(RedisConnectionMetadata):
    scaler_types: ClassVar[tuple[str, ...]] = ("redis", "redis-cluster", "redis-sentinel")

    list_name: str = key("listName", doc="the Redis key to count (list, set, sorted set, hash)")
    list_length: int = key("listLength", default=5, check=positive, doc="target items per Job")
    activation_list_length: int = key(
        "activationListLength", default=0, doc="active when the count is greater"
    )

    def spec(self, scaler_type: str) -> tuple[str, float]:
        return metric_name("redis", self.list_name), float(self.list_length)

    def trigger(self, scaler_type: str) -> Trigger:
        name, target = self.spec(scaler_type)
        return Trigger(
            scaler_type=scaler_type,
            metric_name=name,
            target=target,
            activation=float(self.activation_list_length),
            query=RedisListQuery(self.connection(scaler_type), self.list_name),
        )


@dataclass(frozen=True, kw_only=True)
class RedisStreamMetadata(RedisConnectionMetadata):
    scaler_types: ClassVar[tuple[str, ...]] = (
        "redis-streams",
        "redis-cluster-streams",
        "redis-sentinel-streams",
    )

    stream: str = key("stream", doc="the stream key")
    consumer_group: str = key("consumerGroup", default="", doc="count this group's work")
    pending_entries_count: int = key(
        "pendingEntriesCount", default=5, check=positive, doc="target pending entries per Job"
    )
    stream_length: int = key(
        "streamLength", default=5, check=positive, doc="target stream entries per Job"
    )
    lag_count: int = key(
        "lagCount", default=0, check=non_negative, doc="target group lag per Job; 0 = pending mode"
    )
    activation_lag_count: int = key(
        "activationLagCount", default=0, doc="active when the count is greater (every mode)"
    )

    def mode(self) -> tuple[Literal["length", "pending", "lag"], int]:
        """KEDA's mode and its target: no group = XLEN, lagCount != 0 = lag, else pending."""
        if not self.consumer_group:
            return "length", self.stream_length
        if self.lag_count != 0:
            return "lag", self.lag_count
        return "pending", self.pending_entries_count

    def spec(self, scaler_type: str) -> tuple[str, float]:
        return metric_name("redis-streams", self.stream), float(self.mode()[1])

    def trigger(self, scaler_type: str) -> Trigger:
        mode, _ = self.mode()
        name, target = self.spec(scaler_type)
        return Trigger(
            scaler_type=scaler_type,
            metric_name=name,
            target=target,
            activation=float(self.activation_lag_count),
            query=RedisStreamQuery(
                self.connection(scaler_type), self.stream, mode, self.consumer_group
            ),
        )


_COUNT_BY_TYPE = {
    b"list": "llen",
    b"none": "llen",
    b"zset": "zcard",
    b"set": "scard",
    b"hash": "hlen",
}


def _scrub(text: str, conn: RedisConnection) -> str:
    for secret in (conn.password, conn.sentinel_password):
        if secret is not None and secret.reveal():
            text = text.replace(secret.reveal(), "***")
    return text


def _detail(exc: BaseException, conn: RedisConnection) -> str:
    """What of an exception a message may show. A server's error reply is the server's
    text (any server a trigger names could write anything there): only its error code
    (WRONGTYPE, NOAUTH, ...). redis-py's own texts (connection errors) are kept,
    without credentials, cut short."""
    text = str(exc)
    if isinstance(exc, rexc.ResponseError | rexc.AuthenticationError):
        code = text.split(" ", 1)[0]
        return code if re.fullmatch(r"[A-Z][A-Z_-]{1,31}", code) else type(exc).__name__
    return _scrub(text[:200], conn) or type(exc).__name__


def _translate(exc: BaseException, conn: RedisConnection, what: str) -> ScalerError:
    """Map a redis-py exception to our error tree. Order matters: auth errors are
    ConnectionErrors in redis-py."""
    where = conn.describe()
    detail = _detail(exc, conn)
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthenticationWrongNumberOfArgsError):
        return BrokerAuthError(f"{where} refused our credentials while {what}: {detail}")
    if isinstance(exc, MasterNotFoundError):
        # redis-py's text is a repr of every sentinel client; keep the cause only.
        sentinels = ", ".join(f"{h}:{p}" for h, p in conn.addresses)
        if "AuthenticationError" in str(exc):
            return BrokerAuthError(
                f"the sentinels at {sentinels} refused our credentials while {what}: check "
                '"sentinelUsername" / "sentinelPassword"'
            )
        return BrokerUnavailable(
            f'no sentinel at {sentinels} could name a master "{conn.sentinel_master}" while '
            f"{what}: the sentinels are down, or they monitor no master of that name"
        )
    if isinstance(exc, rexc.RedisClusterException) and any(
        sign in str(exc) for sign in ("username-password", "WRONGPASS", "NOAUTH", "authenticated")
    ):
        return BrokerAuthError(f"{where} refused our credentials while {what}: {detail}")
    if isinstance(exc, rexc.NoPermissionError):
        return BrokerPermissionError(f"{where}: the user may not run the command {what}: {detail}")
    if isinstance(exc, rexc.TimeoutError | asyncio.TimeoutError):
        return BrokerTimeout(f"{where} did not answer in time while {what}: {detail}")
    if isinstance(
        exc, rexc.ConnectionError | rexc.ClusterDownError | rexc.RedisClusterException | OSError
    ):
        return BrokerUnavailable(f"cannot reach {where} while {what}: {detail}")
    if isinstance(exc, rexc.ResponseError) and str(exc).startswith("WRONGTYPE"):
        return UnsupportedState(
            f"{where}: the key has another type than {what} needs ({detail}); the redis "
            "scalerTypes count lists, sets, sorted sets and hashes, the redis-streams ones streams"
        )
    if isinstance(exc, rexc.ResponseError) and "DB index is out of range" in str(exc):
        return MetadataError(
            f'parameter "databaseIndex" value "{conn.database}" is out of range on {where}: '
            "the server has fewer databases"
        )
    if isinstance(exc, rexc.ResponseError) and str(exc).startswith("NOAUTH"):
        return BrokerAuthError(f"{where} requires a password while {what}: {detail}")
    return BrokerError(f"{where} failed while {what}: {detail}")


class RedisAdapter:
    """Counts Redis lists and streams; one client per server identity."""

    def __init__(
        self,
        *,
        timeout: float,
        max_connections: int = 32,
        idle_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        budget: ClientBudget | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        # (client, sentinel clients to close with it), per server identity
        self._clients: ClientPool[tuple[Any, list[Any]]] = ClientPool(
            close=_close_all, idle_seconds=idle_seconds, clock=clock, budget=budget
        )

    async def read(self, query: Any) -> float:
        conn: RedisConnection = query.conn
        if isinstance(query, RedisListQuery):
            what = f'counting key "{query.key}"'
        elif isinstance(query, RedisStreamQuery):
            what = f'reading stream "{query.stream}" ({query.mode})'
        else:
            raise TypeError(f"not a Redis query: {query!r}")

        async def open_client() -> tuple[Any, list[Any]]:
            return self._new_client(conn)

        try:
            async with self._clients.lease(fingerprint(conn), open_client) as (client, _):
                if isinstance(query, RedisListQuery):
                    return float(await self._count_key(client, query))
                return float(await self._count_stream(client, query))
        except ScalerError:
            raise
        # RedisClusterException is not a RedisError in redis-py: catch it too.
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise _translate(exc, conn, what) from exc

    async def _count_key(self, client: Any, query: RedisListQuery) -> int:
        key_type = await client.type(query.key)
        command = _COUNT_BY_TYPE.get(key_type)
        if command is None:
            raise UnsupportedState(
                f'Redis key "{query.key}" on {query.conn.describe()} is a '
                f"{key_type.decode(errors='replace')}; the redis scaler counts a list, set, "
                "sorted set or hash (use a redis-streams scalerType for streams)"
            )
        return int(await getattr(client, command)(query.key))

    async def _count_stream(self, client: Any, query: RedisStreamQuery) -> int:
        if query.mode == "length":
            return int(await client.xlen(query.stream))
        if query.mode == "pending":
            try:
                summary = await client.xpending(query.stream, query.group)
            except rexc.ResponseError as exc:
                if str(exc).startswith("NOGROUP"):
                    raise QueueNotFound(
                        f'consumer group "{query.group}" does not exist on stream '
                        f'"{query.stream}" ({query.conn.describe()}); create it with XGROUP '
                        "CREATE ... MKSTREAM"
                    ) from exc
                raise
            return int(summary["pending"])
        try:
            groups = await client.xinfo_groups(query.stream)
        except rexc.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return 0  # KEDA: a stream that does not exist yet has no lag
            raise
        for group in groups:
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) != query.group:
                continue
            if "lag" not in group:
                raise UnsupportedState(
                    f"{query.conn.describe()} does not report consumer group lag (needs "
                    'Redis >= 7.0); remove "lagCount" to scale on pending entries instead'
                )
            if group["lag"] is None:
                raise UnsupportedState(
                    f'Redis cannot tell the lag of group "{query.group}" on stream '
                    f'"{query.stream}" (entries were deleted, or the group started at an '
                    "arbitrary ID); scale on pending entries, or reset with XGROUP SETID "
                    "... ENTRIESREAD"
                )
            return int(group["lag"])
        return int(await client.xlen(query.stream))  # KEDA: a missing group counts XLEN

    def _common(self, conn: RedisConnection) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "username": conn.username or None,
            "password": conn.password.reveal() if conn.password else None,
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "retry": Retry(NoBackoff(), 1),  # one reconnect: heals a pooled, dead socket
            "client_name": "keda-queue-scaler",
        }
        if conn.tls:
            kwargs["ssl"] = True
            if conn.unsafe_ssl:
                kwargs["ssl_cert_reqs"] = ssl.CERT_NONE
                kwargs["ssl_check_hostname"] = False
        return kwargs

    def _new_client(self, conn: RedisConnection) -> tuple[Any, list[Any]]:
        common = self._common(conn)
        extra: list[Any] = []
        material = conn.client_tls
        if conn.tls and (material.ca is not None or material.has_client_cert):
            tlsfiles.context(material)  # a bad PEM is the trigger's error, not a dead broker
            if material.ca is not None:
                common["ssl_ca_data"] = material.ca.reveal()
            if material.has_client_cert:
                files = tlsfiles.TlsFiles(material)
                extra.append(files)  # removed when this client is closed
                common["ssl_certfile"], common["ssl_keyfile"] = files.cert, files.key
                if material.key_password is not None:
                    common["ssl_password"] = material.key_password.reveal()
        if conn.mode == "cluster":
            common.pop("client_name")
            cluster = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in conn.addresses],
                max_connections=self._max_connections,
                **common,
            )
            return cluster, extra
        if conn.mode == "sentinel":
            sentinel_kwargs = {
                "username": conn.sentinel_username or None,
                "password": conn.sentinel_password.reveal() if conn.sentinel_password else None,
                "socket_timeout": self._timeout,
                "socket_connect_timeout": self._timeout,
                # redis-py's default retries 3 times with backoff, auth errors included:
                # a wrong sentinelPassword then takes 7 s instead of one round trip.
                "retry": common["retry"],
            }
            if conn.tls:
                sentinel_kwargs.update({k: v for k, v in common.items() if k.startswith("ssl")})
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(conn.addresses), sentinel_kwargs=sentinel_kwargs, **common
            )
            master = sentinel.master_for(conn.sentinel_master, db=conn.database)
            return master, [*sentinel.sentinels, *extra]
        host, port = conn.addresses[0]
        if common.pop("ssl", False):
            common["connection_class"] = SSLConnection
        pool = BlockingConnectionPool(
            host=host,
            port=port,
            db=conn.database,
            max_connections=self._max_connections,
            timeout=self._timeout,
            **common,
        )
        return Redis.from_pool(pool), extra  # the client owns the pool: aclose() closes it

    async def aclose(self) -> None:
        await self._clients.aclose()


async def _close_all(entry: tuple[Any, list[Any]]) -> None:
    """Close a client and its sentinels; a broken connection may fail to close,
    and then there is nothing left to release."""
    client, others = entry
    for each in (client, *others):
        with contextlib.suppress(rexc.RedisError, OSError):
            await each.aclose()
