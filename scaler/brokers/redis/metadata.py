"""The ``redis*`` trigger metadata (KEDA's keys, defaults and modes) and the queries it
makes: what to count and where, parsed without any I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

import scaler.brokers.redis.formats as formats
from scaler.brokers import tlsfiles
from scaler.brokers.redis import worklist
from scaler.errors import (
    MetadataError,
)
from scaler.guard import Destination
from scaler.metadata import (
    AgeKeys,
    Secret,
    TriggerMetadata,
    auth_key,
    key,
    non_negative,
    positive,
    secret_key,
)
from scaler.trigger import AnyTrigger, aging, counting, metric_name

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
    #: measure: age: read the list's end items' times too (the enqueue helper's
    #: envelope, or this JSON field of each item)
    age: bool = False
    age_field: str = ""

    def destinations(self) -> tuple[Destination, ...]:
        return self.conn.destinations()


@dataclass(frozen=True)
class RedisFormatQuery:
    """A task framework's queue: the keys and arguments of its format's count, and the
    states summed."""

    conn: RedisConnection
    format: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    states: tuple[formats.State, ...]
    #: measure: age: the script also returns the oldest ready job's time
    age: bool = False

    def destinations(self) -> tuple[Destination, ...]:
        return self.conn.destinations()


@dataclass(frozen=True)
class RedisWorkQuery:
    """A list worked by ``keda-queue-scaler work``: its ready items and the claims its
    workers hold (docs/worker.md), summed over ``states``."""

    conn: RedisConnection
    keys: worklist.WorkKeys
    states: tuple[worklist.WorkState, ...]
    age: bool = False
    age_field: str = ""

    def destinations(self) -> tuple[Destination, ...]:
        return self.conn.destinations()


@dataclass(frozen=True)
class RedisStreamQuery:
    conn: RedisConnection
    stream: str
    mode: Literal["length", "pending", "lag"]
    group: str
    #: measure: age: the first entry the group has not been given (or the first entry)
    age: bool = False

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
        auth_order="tm;auth;env",
        role="target",
    )
    hosts: tuple[str, ...] = key(
        "host", aliases=("hosts",), default=(), from_env=True, doc="host name(s), with port(s)",
        auth_order="tm;env;auth", role="target",
    )  # fmt: skip
    ports: tuple[str, ...] = key(
        "port", aliases=("ports",), default=(), from_env=True, doc="port(s), one per host",
        auth_order="tm;env;auth", role="port",
    )  # fmt: skip
    username: str = key(
        "username", default="", from_env=True, doc="ACL user name", auth_order="tm;env;auth"
    )
    password: Secret | None = secret_key(
        "password", doc="password (prefer passwordFromEnv)", auth_order="tm;env;auth"
    )
    sentinel_username: str = key(
        "sentinelUsername", default="", from_env=True, auth_order="tm;auth;env"
    )
    sentinel_password: Secret | None = secret_key("sentinelPassword", auth_order="tm;auth;env")
    sentinel_master: str = key(
        "sentinelMaster", default="", from_env=True, auth_order="tm;auth;env"
    )
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
class RedisListMetadata(RedisConnectionMetadata, AgeKeys):
    scaler_types: ClassVar[tuple[str, ...]] = ("redis", "redis-cluster", "redis-sentinel")

    list_name: str = key(
        "listName", default="", doc="the Redis key to count (list, set, sorted set, hash)"
    )
    list_length: int = key("listLength", default=5, check=positive, doc="target items per Job")
    activation_list_length: int = key(
        "activationListLength", default=0, doc="active when the count is greater"
    )
    queue_format: str = key(
        "queueFormat", default="list",
        doc="list (KEDA's count of one key) or a task framework: " + ", ".join(formats.FORMATS),
    )  # fmt: skip
    queue_name: str = key(
        "queueName", default="", doc="the framework's own name for the queue (not with list)"
    )
    include: tuple[str, ...] = key(
        "include", default=("ready",),
        doc="the states counted, comma-separated: ready, scheduled, active, paused (a "
        "framework); ready, active, expired (a list worked by `keda-queue-scaler work`)",
    )  # fmt: skip
    key_prefix: str | None = key(
        "keyPrefix", default=None,
        doc="the framework's key prefix (kombu global_keyprefix, RQ_KEY_PREFIX, "
        "Dramatiq namespace, BullMQ prefix)",
    )  # fmt: skip
    priority_steps: tuple[str, ...] | None = key(
        "prioritySteps", default=None, doc="Celery: kombu's priority_steps (default 0,3,6,9)"
    )
    priority_separator: str | None = key(
        "prioritySeparator", default=None, doc="Celery: kombu's sep (default \\x06\\x16)"
    )
    age_field: str = key(
        "ageField", default="",
        doc="measure: age on a list: the JSON field of each item holding its enqueue "
        "time (Unix seconds or milliseconds, or ISO 8601); items written by "
        "`keda-queue-scaler enqueue` need none",
    )  # fmt: skip

    def framework(self) -> tuple[formats.Format, formats.Settings] | None:
        """The queue format and its settings, or None for KEDA's ``list``."""
        if self.queue_format == "list":
            return None
        fmt = formats.FORMATS.get(self.queue_format)
        if fmt is None:
            raise MetadataError(
                f'parameter "queueFormat" value "{self.queue_format}" must be one of '
                f"{', '.join(formats.QUEUE_FORMATS)}"
            )
        steps: tuple[int, ...] | None = None
        if self.priority_steps is not None:
            if not all(re.fullmatch(r"[0-9]{1,3}", step) for step in self.priority_steps):
                raise MetadataError(
                    f'parameter "prioritySteps" value "{",".join(self.priority_steps)}" must '
                    'be integers from 0 to 999, comma-separated (e.g. "0,3,6,9")'
                )
            steps = tuple(int(step) for step in self.priority_steps)
        return fmt, formats.Settings(
            self.queue_name, self.key_prefix, steps, self.priority_separator
        )

    def validate(self, scaler_type: str) -> None:
        super().validate(scaler_type)
        found = self.framework()
        if self.age_field and (found is not None or not self.wants_age):
            raise MetadataError(
                'parameter "ageField" applies to measure "age" on queueFormat "list" only'
            )
        if found is None:
            self.check_age()
            for given, name in (
                (self.queue_name, "queueName"), (self.key_prefix, "keyPrefix"),
                (self.priority_steps, "prioritySteps"),
                (self.priority_separator, "prioritySeparator"),
            ):  # fmt: skip
                if given:
                    raise MetadataError(
                        f'parameter "{name}" needs a framework queueFormat (one of '
                        f'{", ".join(formats.FORMATS)}); queueFormat "list" counts "listName"'
                    )
            if not self.list_name:
                raise MetadataError(
                    f'parameter "listName" is required for scalerType "{scaler_type}": '
                    "the Redis key to count (list, set, sorted set, hash)"
                )
            for state in self.include:
                if state not in worklist.WORK_STATES:
                    raise MetadataError(
                        f'parameter "include" value "{state}" is not a state of queueFormat '
                        f'"list": use {", ".join(worklist.WORK_STATES)} (active and expired '
                        "are the claims of `keda-queue-scaler work`), or a framework "
                        "queueFormat"
                    )
            if self.include != ("ready",) and _MODES[scaler_type] == "cluster":
                problem = worklist.cluster_problem(self.list_name)
                if problem is not None:
                    raise MetadataError(
                        f'parameter "listName" with "include" on "{scaler_type}": {problem}'
                    )
            return
        fmt, settings = found
        cluster = _MODES[scaler_type] == "cluster"
        self.check_age(fmt.age_problem(cluster=cluster))
        if self.list_name:
            raise MetadataError(
                f'parameter "listName" belongs to queueFormat "list"; queueFormat '
                f'"{fmt.name}" names its queue with "queueName"'
            )
        if not self.queue_name:
            raise MetadataError(
                f'parameter "queueName" is required for queueFormat "{fmt.name}": the '
                f'framework\'s own name for the queue (e.g. "{fmt.default_queue}")'
            )
        formats.check(fmt, settings, self.include, cluster=_MODES[scaler_type] == "cluster")

    def spec(self, scaler_type: str) -> tuple[str, float]:
        if self.queue_format != "list" and self.queue_name:
            name = metric_name(f"redis-{self.queue_format}", self.queue_name)
            return self.age_spec(name, float(self.list_length))
        return self.age_spec(metric_name("redis", self.list_name), float(self.list_length))

    def trigger(self, scaler_type: str) -> AnyTrigger:
        found = self.framework()
        conn = self.connection(scaler_type)
        age = self.wants_age
        query: RedisListQuery | RedisFormatQuery | RedisWorkQuery
        if found is None and self.include == ("ready",):
            # KEDA's own count, type switch
            query = RedisListQuery(conn, self.list_name, age, self.age_field)
        elif found is None:
            held = tuple(s for s in worklist.WORK_STATES if s in self.include)
            keys = worklist.WorkKeys(self.list_name)
            query = RedisWorkQuery(conn, keys, held, age, self.age_field)
        else:
            fmt, settings = found
            plan = fmt.plan(settings)
            states = tuple(s for s in formats.STATES if s in self.include)
            query = RedisFormatQuery(conn, fmt.name, plan.keys, plan.args, states, age)
        spec = self.spec(scaler_type)
        if age:
            return aging(scaler_type, spec, self.activation_age, query)
        return counting(scaler_type, spec, float(self.activation_list_length), query)


@dataclass(frozen=True, kw_only=True)
class RedisStreamMetadata(RedisConnectionMetadata, AgeKeys):
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

    def validate(self, scaler_type: str) -> None:
        super().validate(scaler_type)
        self.check_age()

    def spec(self, scaler_type: str) -> tuple[str, float]:
        name = metric_name("redis-streams", self.stream)
        return self.age_spec(name, float(self.mode()[1]))

    def trigger(self, scaler_type: str) -> AnyTrigger:
        mode, _ = self.mode()
        query = RedisStreamQuery(
            self.connection(scaler_type), self.stream, mode, self.consumer_group, self.wants_age
        )
        spec = self.spec(scaler_type)
        if self.wants_age:
            return aging(scaler_type, spec, self.activation_age, query)
        return counting(scaler_type, spec, float(self.activation_lag_count), query)
