"""Reads of Redis lists and streams over redis-py: one client per server identity,
redis-py's exceptions turned into ours at this edge."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, cast

from redis import exceptions as rexc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff

import scaler.brokers.redis.formats as formats
from scaler.brokers import tlsfiles
from scaler.brokers.pool import ClientBudget, ClientPool
from scaler.brokers.redis import ages, worklist
from scaler.brokers.redis.metadata import (
    RedisConnection,
    RedisFormatQuery,
    RedisListQuery,
    RedisStreamQuery,
    RedisWorkQuery,
)
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
from scaler.metadata import (
    fingerprint,
)
from scaler.trigger import Aged


class _Counts(Protocol):
    """The commands this adapter sends: the same on a standalone, cluster or
    sentinel-found master client of redis-py."""

    async def type(self, name: str) -> bytes: ...
    async def llen(self, name: str) -> int: ...
    async def zcard(self, name: str) -> int: ...
    async def scard(self, name: str) -> int: ...
    async def hlen(self, name: str) -> int: ...
    async def xlen(self, name: str) -> int: ...
    async def xpending(self, name: str, groupname: str) -> Mapping[str, object]: ...
    async def xinfo_groups(self, name: str) -> list[Mapping[str, object]]: ...
    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str) -> object: ...
    async def script_load(self, script: str) -> str: ...
    async def aclose(self) -> None: ...


def _counts(client: Redis | RedisCluster) -> _Counts:
    """redis-py's asyncio clients as the commands they answer: their annotations are
    the sync mixins' (``ResponseT``, awaitable or not), which a Protocol cannot check."""
    return cast(_Counts, client)


class _Closes(Protocol):
    async def aclose(self) -> None: ...


#: KEDA's type switch: the count for each key type (a missing key counts as a list).
_COUNT_BY_TYPE: dict[bytes, Callable[[_Counts, str], Awaitable[int]]] = {
    b"list": lambda client, key: client.llen(key),
    b"none": lambda client, key: client.llen(key),
    b"zset": lambda client, key: client.zcard(key),
    b"set": lambda client, key: client.scard(key),
    b"hash": lambda client, key: client.hlen(key),
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


def translate(exc: BaseException, conn: RedisConnection, what: str) -> ScalerError:
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


def _format_count(answer: object, query: RedisFormatQuery) -> tuple[int, float | None]:
    """The sum of the wanted states from a format script's answer and, for an age,
    the oldest ready job's time; or the problem it reported as our error."""
    where = query.conn.describe()
    if not isinstance(answer, list) or len(answer) not in (4, 6):
        raise UnsupportedState(f"{where} answered the {query.format} count with no counts")
    if len(answer) == 6 and answer[0] == 1 and all(isinstance(n, int) for n in answer[1:5]):
        counts = dict(zip(formats.STATES, answer[1:5], strict=True))
        total = sum(int(counts[state]) for state in query.states)
        if not query.age:
            return total, None
        return total, ages.oldest_of(answer[5], framework=query.format, where=where)
    kind, a, b = (x.decode(errors="replace") if isinstance(x, bytes) else str(x)
                  for x in answer[1:4])  # fmt: skip
    if kind == "wrongtype":
        raise UnsupportedState(
            f'Redis key "{a}" on {where} is a {b}, which {query.format} does not keep there: '
            f'check queueFormat, queueName and keyPrefix (or use queueFormat "list")'
        )  # fmt: skip
    if kind == "scan":
        raise UnsupportedState(
            f"{query.format}: this count would decode more than the {formats.SCAN_LIMIT:,} "
            f'entries one count may ({b} in "{a}" on {where}); see docs/frameworks.md'
        )  # fmt: skip
    if kind == "decode":
        raise UnsupportedState(
            f'{query.format}: an entry of "{a}" on {where} is not the JSON the framework '
            "writes by default, so its due time or queue cannot be read"
        )  # fmt: skip
    raise UnsupportedState(f"{where} answered the {query.format} count with an unknown problem")


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
        self._clients: ClientPool[tuple[_Counts, list[_Closes]]] = ClientPool(
            close=_close_all, idle_seconds=idle_seconds, clock=clock, budget=budget
        )

    async def read(
        self, query: RedisListQuery | RedisStreamQuery | RedisFormatQuery | RedisWorkQuery
    ) -> float | Aged:
        """The count, or with ``query.age`` the count and its oldest ready item's time."""
        conn = query.conn
        if isinstance(query, RedisListQuery):
            what = f'counting key "{query.key}"'
        elif isinstance(query, RedisFormatQuery):
            what = f'counting {query.format} queue "{query.keys[0]}"'
        elif isinstance(query, RedisWorkQuery):
            what = f'counting worked list "{query.keys.queue}"'
        elif isinstance(query, RedisStreamQuery):
            what = f'reading stream "{query.stream}" ({query.mode})'
        else:
            raise TypeError(f"not a Redis query: {query!r}")

        async def open_client() -> tuple[_Counts, list[_Closes]]:
            return self._new_client(conn)

        try:
            async with self._clients.lease(fingerprint(conn), open_client) as (client, _):
                if isinstance(query, RedisListQuery):
                    if query.age:
                        return await _aged_list(client, query, query.key)
                    return float(await self._count_key(client, query))
                if isinstance(query, RedisFormatQuery):
                    count, oldest = await self._count_format(client, query)
                    return Aged(float(count), oldest) if query.age else float(count)
                if isinstance(query, RedisWorkQuery):
                    count = await _count_work(client, query)
                    if query.age:
                        listed = await _aged_list(client, query, query.keys.queue)
                        return Aged(float(count), listed.oldest)
                    return float(count)
                count = await self._count_stream(client, query)
                if query.age:
                    return Aged(float(count), await _stream_head(client, query))
                return float(count)
        except ScalerError:
            raise
        # RedisClusterException is not a RedisError in redis-py: catch it too.
        except (TimeoutError, rexc.RedisError, rexc.RedisClusterException, OSError) as exc:
            raise translate(exc, conn, what) from exc

    async def _count_key(self, client: _Counts, query: RedisListQuery) -> int:
        key_type = await client.type(query.key)
        count = _COUNT_BY_TYPE.get(key_type)
        if count is None:
            raise UnsupportedState(
                f'Redis key "{query.key}" on {query.conn.describe()} is a '
                f"{key_type.decode(errors='replace')}; the redis scaler counts a list, set, "
                "sorted set or hash (use a redis-streams scalerType for streams)"
            )
        return int(await count(client, query.key))

    async def _count_format(
        self, client: _Counts, query: RedisFormatQuery
    ) -> tuple[int, float | None]:
        """One EVALSHA of the format's script (loaded on a NOSCRIPT, then run again):
        the count, and with ``query.age`` the oldest ready job's time."""
        script = formats.FORMATS[query.format].script()
        wanted = "".join(state[0] for state in query.states) + ("o" if query.age else "")
        argv = (wanted, *query.args)
        answer = await _evalsha(client, script.sha, script.source, query.keys, argv)
        return _format_count(answer, query)

    async def _count_stream(self, client: _Counts, query: RedisStreamQuery) -> int:
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
            pending = summary["pending"]
            if not isinstance(pending, int):
                raise UnsupportedState(f"{query.conn.describe()} answered XPENDING without a count")
            return pending
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
            lag = group["lag"]
            if not isinstance(lag, int):
                raise UnsupportedState(
                    f"{query.conn.describe()} answered a lag that is not a count"
                )
            return lag
        return int(await client.xlen(query.stream))  # KEDA: a missing group counts XLEN

    def _new_client(self, conn: RedisConnection) -> tuple[_Counts, list[_Closes]]:
        client, extra = open_client(
            conn, timeout=self._timeout, max_connections=self._max_connections
        )
        return _counts(client), extra

    async def aclose(self) -> None:
        await self._clients.aclose()


async def _close_all(entry: tuple[_Counts, list[_Closes]]) -> None:
    """Close a client and its sentinels; a broken connection may fail to close,
    and then there is nothing left to release."""
    client, others = entry
    for each in (client, *others):
        with contextlib.suppress(rexc.RedisError, OSError):
            await each.aclose()


# redis-py's keyword arguments, each of its own type, for whichever client is made.
# redis-py's keyword arguments, each of its own type, for whichever client is made.
def _common(conn: RedisConnection, timeout: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "username": conn.username or None,
        "password": conn.password.reveal() if conn.password else None,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),  # one reconnect: heals a pooled, dead socket
        "client_name": "keda-queue-scaler",
    }
    if conn.tls:
        kwargs["ssl"] = True
        if conn.unsafe_ssl:
            kwargs["ssl_cert_reqs"] = ssl.CERT_NONE
            kwargs["ssl_check_hostname"] = False
    return kwargs


def open_client(
    conn: RedisConnection,
    *,
    timeout: float,
    max_connections: int = 32,
    name: str = "keda-queue-scaler",
) -> tuple[Redis | RedisCluster, list[_Closes]]:
    """A redis-py asyncio client for ``conn`` (standalone, cluster, or the master a
    sentinel names), and what to close with it (sentinel clients, TLS files). The
    scaler's adapter and the worker both open their clients here."""
    common = _common(conn, timeout)
    common["client_name"] = name
    extra: list[_Closes] = []
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
            max_connections=max_connections,
            **common,
        )
        return cluster, extra
    if conn.mode == "sentinel":
        sentinel_kwargs = {
            "username": conn.sentinel_username or None,
            "password": conn.sentinel_password.reveal() if conn.sentinel_password else None,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
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
        max_connections=max_connections,
        timeout=timeout,
        **common,
    )
    return Redis.from_pool(pool), extra  # it owns the pool: aclose() closes it


async def _evalsha(
    client: _Counts, sha: str, source: str, keys: tuple[str, ...], args: tuple[str, ...]
) -> object:
    """EVALSHA, loading the script on a NOSCRIPT and running it again."""
    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except rexc.NoScriptError:
        await client.script_load(source)
        return await client.evalsha(sha, len(keys), *keys, *args)


async def _aged_list(client: _Counts, query: RedisListQuery | RedisWorkQuery, key: str) -> Aged:
    """A list's length and its oldest end's time, in one script."""
    script = ages.ENDS
    answer = await _evalsha(client, script.sha, script.source, (key,), (str(ages.MAX_ITEM),))
    where = query.conn.describe()
    if not isinstance(answer, list) or len(answer) != 4:
        raise UnsupportedState(f"{where} answered the list's ends with no list")
    kind = answer[0].decode(errors="replace") if isinstance(answer[0], bytes) else str(answer[0])
    if kind not in ("list", "none"):
        raise UnsupportedState(
            f'Redis key "{key}" on {where} is a {kind}: measure age reads a list, whose '
            "items carry their enqueue times (docs/age.md)"
        )
    ends = tuple(end if isinstance(end, bytes | int) else None for end in answer[2:4])
    oldest = ages.list_oldest((ends[0], ends[1]), key=key, age_field=query.age_field, where=where)
    return Aged(float(answer[1]) if isinstance(answer[1], int) else 0.0, oldest)


async def _stream_head(client: _Counts, query: RedisStreamQuery) -> float | None:
    """The time of the first entry the group has not been given (or the first entry)."""
    script = ages.STREAM_HEAD
    answer = await _evalsha(client, script.sha, script.source, (query.stream,), (query.group,))
    return ages.stream_id_time(answer)


async def _count_work(client: _Counts, query: RedisWorkQuery) -> int:
    """One EVALSHA of the worked list's count (loaded on a NOSCRIPT, then run again)."""
    script = worklist.COUNT
    keys, args = worklist.count_args(query.keys, query.states)
    try:
        answer = await client.evalsha(script.sha, len(keys), *keys, *args)
    except rexc.NoScriptError:
        await client.script_load(script.source)
        answer = await client.evalsha(script.sha, len(keys), *keys, *args)
    where = query.conn.describe()
    if isinstance(answer, list) and len(answer) == 4 and answer[0] == 1:
        counts = dict(zip(worklist.WORK_STATES, answer[1:], strict=True))
        if all(isinstance(n, int) for n in counts.values()):
            return sum(int(counts[state]) for state in query.states)
    if isinstance(answer, list) and len(answer) == 4 and answer[0] == 0:
        kind, key, detail = (x.decode(errors="replace") if isinstance(x, bytes) else str(x)
                             for x in answer[1:4])  # fmt: skip
        if kind == "wrongtype":
            raise UnsupportedState(
                f'Redis key "{key}" on {where} is a {detail}: a worked list keeps a list and '
                "a sorted set of leases there (docs/worker.md)"
            )
        if kind == "scan":
            raise UnsupportedState(
                f'"{key}" on {where} holds {detail} leases, more than the {formats.SCAN_LIMIT:,} '
                "one count reads: count ready items only, or run fewer workers per list"
            )
    raise UnsupportedState(f"{where} answered the worked-list count with no counts")
