"""Reads of RabbitMQ queues over AMQP (a passive declare) and the management HTTP API:
clients per server, redirects refused, errors turned into ours at this edge."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import ssl
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

import aiohttp
import aiormq
import aiormq.abc
import aiormq.exceptions as amqp_errors
from yarl import URL

from scaler.brokers import tlsfiles
from scaler.brokers.pool import ClientBudget, ClientPool
from scaler.brokers.rabbitmq.metadata import QueueStats, RabbitQuery, RabbitServer
from scaler.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerPermissionError,
    BrokerTimeout,
    BrokerUnavailable,
    QueueNotFound,
    ScalerError,
    UnsupportedState,
)
from scaler.guard import quoted
from scaler.logs import redact
from scaler.metadata import (
    fingerprint,
)


def _local(exc: BaseException) -> str:
    """What of a connection error a message may show: our own stack's text (refused,
    TLS verification, DNS), cut short; for a close the server sent, only its class
    (its reply text is the server's to write, not ours to echo)."""
    if isinstance(exc, amqp_errors.ConnectionClosed | amqp_errors.ChannelClosed):
        return type(exc).__name__
    return redact(str(exc))[:200] or type(exc).__name__


#: The largest management API answer read (a page of pageSize queues fits well).
_MAX_BODY = 32 * 2**20


def _combine(items: list[object], operation: str) -> QueueStats:
    """KEDA's regex composition: sum; avg (counts rounded down); max (from 0)."""
    if not items:
        return QueueStats(0, 0)
    stats = [_stats(item) for item in items]
    publish = [s.publish_rate for s in stats]
    deliver = [s.deliver_get_rate for s in stats]
    n = len(stats)

    def counts(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        if len(known) < n:
            return None  # a queue without statistics yet: the combination is unknown
        if operation == "avg":
            return sum(known) // n
        return max([0, *known]) if operation == "max" else sum(known)

    messages = counts([s.messages for s in stats])
    ready = counts([s.ready for s in stats])
    if operation == "avg":
        return QueueStats(messages, ready, sum(publish) / n, sum(deliver) / n)
    if operation == "max":
        return QueueStats(messages, ready, max([0.0, *publish]), max([0.0, *deliver]))
    return QueueStats(messages, ready, sum(publish), sum(deliver))


def _stat_count(item: Mapping[str, object], field: str) -> int | None:
    value = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrokerUnavailable(f'the management API answered a non-integer "{field}"')
    return value


def _rate(rates: Mapping[str, object], field: str) -> float:
    details = rates.get(field) or {}
    if not isinstance(details, dict):
        raise BrokerUnavailable(f'the management API answered a malformed "{field}"')
    value = details.get("rate", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BrokerUnavailable(f'the management API answered a non-numeric "{field}" rate')
    return float(value)


def _stats(item: object) -> QueueStats:
    if not isinstance(item, dict):
        raise BrokerUnavailable("the management API answered a queue that is not a JSON object")
    rates = item.get("message_stats") or {}
    if not isinstance(rates, dict):
        raise BrokerUnavailable('the management API answered a malformed "message_stats"')
    head = item.get("head_message_timestamp")
    timed = isinstance(head, int | float) and not isinstance(head, bool) and head > 0
    return QueueStats(
        messages=_stat_count(item, "messages"),
        ready=_stat_count(item, "messages_ready"),
        publish_rate=_rate(rates, "publish_details"),
        deliver_get_rate=_rate(rates, "deliver_get_details"),
        oldest=float(head) if timed else None,  # type: ignore[arg-type]
    )


def _aged(
    items: list[QueueStats], names: list[str], combined: QueueStats, where: str
) -> QueueStats:
    """``measure: age``: the oldest head message's timestamp over the queues read, and
    the ready count; a queue with ready messages and no head timestamp is refused."""
    for stats, name in zip(items, names, strict=True):
        if stats.ready is None:
            raise BrokerUnavailable(
                f'the management API has no "messages_ready" statistics for queue '
                f'"{quoted(name[:200])}" on {where} yet; they appear within its statistics '
                "interval (5 s by default)"
            )
        if stats.ready > 0 and stats.oldest is None:
            raise UnsupportedState(
                f'the head message of queue "{quoted(name[:200])}" on {where} has no timestamp '
                "property, so its age is unknown: publish with a timestamp, or enable the "
                "rabbitmq_message_timestamp plugin (docs/age.md); only classic queues report one"
            )
    times = [s.oldest for s in items if s.oldest is not None and (s.ready or 0) > 0]
    return QueueStats(
        combined.messages, combined.ready, combined.publish_rate, combined.deliver_get_rate,
        oldest=min(times, default=None),
    )  # fmt: skip


def ssl_context(server: RabbitServer) -> ssl.SSLContext:
    """KEDA's TLS config: the system's CAs (plus a TriggerAuthentication's ``ca``), a
    client certificate when one is given, no verification with ``unsafeSsl``."""
    if server.client_tls.ca is not None or server.client_tls.has_client_cert:
        return tlsfiles.context(server.client_tls)
    unsafe = server.unsafe_ssl
    context = ssl.create_default_context()
    if unsafe:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class RabbitAdapter:
    """Reads RabbitMQ queues over AMQP or HTTP; connections reused per broker."""

    def __init__(
        self, *, timeout: float, idle_seconds: float = 600.0, budget: ClientBudget | None = None
    ) -> None:
        self._timeout = timeout
        self._amqp: ClientPool[aiormq.abc.AbstractConnection] = ClientPool(
            close=_close_amqp, idle_seconds=idle_seconds, budget=budget
        )
        self._http: ClientPool[aiohttp.ClientSession] = ClientPool(
            close=_close_http, idle_seconds=idle_seconds, budget=budget
        )

    async def read(self, query: RabbitQuery) -> QueueStats:
        ident = fingerprint(query.server)
        if query.server.protocol == "amqp":
            with self._amqp.holding(ident):
                return await self._read_amqp(query)
        with self._http.holding(ident):
            return await self._read_http(query)

    # -- AMQP ---------------------------------------------------------------
    async def _connection(self, server: RabbitServer) -> aiormq.abc.AbstractConnection:
        ident = fingerprint(server)

        async def connect() -> aiormq.abc.AbstractConnection:
            url = URL(server.url.reveal())
            context = ssl_context(server) if url.scheme == "amqps" else None
            conn = aiormq.Connection(
                url, context=context, client_properties={"connection_name": "keda-queue-scaler"}
            )
            await conn.connect()
            return conn

        conn = await self._amqp.get(ident, connect)
        if conn.is_closed:  # the broker went away since the last read: reconnect
            self._amqp.discard(ident)
            conn = await self._amqp.get(ident, connect)
        return conn

    async def _read_amqp(self, query: RabbitQuery) -> QueueStats:
        where = query.server.display
        what = f'declaring queue "{query.queue}" passively'
        for attempt in (1, 2):
            try:
                conn = await self._connection(query.server)
                channel = await conn.channel()
            except amqp_errors.ProbableAuthenticationError as exc:
                raise BrokerAuthError(f"{where} refused our credentials") from exc
            except amqp_errors.ConnectionNotAllowed as exc:
                raise BrokerPermissionError(f"{where} refused the vhost") from exc
            except amqp_errors.InvalidFrameError as exc:
                if "Connection.Close" not in str(exc):
                    raise BrokerUnavailable(f"{where} broke the protocol while {what}") from exc
                # The broker answered Connection.Open with Connection.Close: no such
                # vhost, or the user may not use it (AMQP reply 530, NOT_ALLOWED).
                raise BrokerPermissionError(
                    f"{where} refused to open the vhost: it does not exist, or the user has "
                    "no permissions on it (see vhostName or the host URL's path)"
                ) from exc
            except (amqp_errors.AMQPConnectionError, ConnectionError, OSError) as exc:
                self._amqp.discard(fingerprint(query.server))  # reconnect next time
                if attempt == 1 and isinstance(exc, amqp_errors.ConnectionClosed):
                    continue  # a connection that died since the last read: one fresh try
                raise BrokerUnavailable(
                    f"cannot reach {where} while {what}: {_local(exc)}"
                ) from exc
            try:
                ok = await channel.queue_declare(query.queue, passive=True)
            except amqp_errors.ChannelNotFoundEntity as exc:
                raise QueueNotFound(f'queue "{query.queue}" does not exist on {where}') from exc
            except amqp_errors.ChannelAccessRefused as exc:
                raise BrokerPermissionError(f"{where}: access refused while {what}") from exc
            except (amqp_errors.AMQPError, ConnectionError, OSError) as exc:
                self._amqp.discard(fingerprint(query.server))
                raise BrokerUnavailable(
                    f"{where} failed while {what}: {type(exc).__name__}"
                ) from exc
            finally:
                if not channel.is_closed:
                    with contextlib.suppress(amqp_errors.AMQPError, ConnectionError, OSError):
                        await channel.close()
            count = int(ok.message_count or 0) if ok is not None else 0
            return QueueStats(messages=count, ready=count)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- HTTP ---------------------------------------------------------------
    async def _session(self, server: RabbitServer) -> aiohttp.ClientSession:
        async def open_session() -> aiohttp.ClientSession:
            headers = {}
            if server.username is not None:
                password = server.password.reveal() if server.password else ""
                token = base64.b64encode(f"{server.username.reveal()}:{password}".encode())
                headers["Authorization"] = "Basic " + token.decode()
            # The trigger's own timeout, never past the scaler's read timeout.
            timeout = min(server.http_timeout or self._timeout, self._timeout)
            return aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                connector=aiohttp.TCPConnector(ssl=ssl_context(server)),
                raise_for_status=False,
            )

        return await self._http.get(fingerprint(server), open_session)

    async def _read_http(self, query: RabbitQuery) -> QueueStats:
        base = query.server.url.reveal()
        where = query.server.display
        if query.use_regex:
            url = (
                f"{base}/api/queues/{query.vhost}?page=1&use_regex=true&pagination=false"
                f"&name={quote_plus(query.queue, safe='')}&page_size={query.page_size}"
            )
            what = f'listing queues matching "{query.queue}"'
        else:
            url = f"{base}/api/queues/{query.vhost}/{quote(query.queue, safe='')}"
            what = f'reading queue "{query.queue}"'
        try:
            session = await self._session(query.server)
            # Never follow a redirect: its Location is the server's choice of where our
            # credentials go next. A 3xx is an error naming its status (below).
            async with session.get(URL(url, encoded=True), allow_redirects=False) as response:
                status = response.status
                reason = response.reason or ""
                payload = None
                if status == 200:
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(65536):
                        body += chunk
                        if len(body) > _MAX_BODY:
                            raise BrokerError(
                                f"{where} sent more than {_MAX_BODY // 2**20} MiB while {what}"
                            )
                    payload = json.loads(body)
        except TimeoutError as exc:
            raise BrokerTimeout(f"{where} did not answer in time while {what}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Our own stack's words for a connection that failed (refused, TLS, DNS);
            # anything else aiohttp says can quote what the server sent (a status line
            # it could not parse, data after a close): only its type.
            connecting = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientOSError)
            detail = _local(exc) if connecting else type(exc).__name__
            raise BrokerUnavailable(f"cannot reach {where} while {what}: {detail}") from exc
        except ValueError as exc:
            raise BrokerError(f"{where} sent a body that is not JSON while {what}") from exc
        if status != 200:
            raise self._http_error(status, reason, where, what, query)
        if not isinstance(payload, dict):
            raise BrokerError(f"{where} sent an unexpected JSON document while {what}")
        if not query.use_regex:
            stats = _stats(payload)
            return _aged([stats], [query.queue], stats, where) if query.age else stats
        pages, items = payload.get("page_count", 1), payload.get("items", [])
        if isinstance(pages, bool) or not isinstance(pages, int) or not isinstance(items, list):
            raise BrokerError(
                f'{where} answered a queue listing without an integer "page_count" and an '
                f'"items" list while {what}'
            )
        if pages > 1:
            matches = payload.get("filtered_count", "?")
            raise UnsupportedState(
                f'more queues match "{query.queue}" on {where} than one page of pageSize='
                f"{query.page_size} holds ({quoted(str(matches)[:20])} matches): "
                'raise "pageSize" or narrow the regex'
            )
        combined = _combine(items, query.operation)
        if not query.age:
            return combined
        names = [str(item.get("name", "?")) if isinstance(item, dict) else "?" for item in items]
        return _aged([_stats(item) for item in items], names, combined, where)

    @staticmethod
    def _http_error(
        status: int, reason: str, where: str, what: str, query: RabbitQuery
    ) -> ScalerError:
        # The status line only: the body is the server's to write, not ours to echo
        # (KEDA copies our message into events the ScaledJob's owner reads).
        text = f"HTTP {status} {quoted(reason[:40])}".rstrip()
        if status == 404:
            vhost = query.vhost.replace("%2F", "/")
            return QueueNotFound(
                f'queue "{query.queue}" (vhost "{vhost}") does not exist on {where}: {text}'
            )
        if status == 401:  # bad credentials, or a user without a management tag
            return BrokerAuthError(
                f"{where} refused our credentials while {what}: {text} (the user needs the "
                "monitoring or management tag)"
            )
        if status == 403:
            return BrokerPermissionError(
                f"{where}: the user may not read the management API while {what}"
            )
        if status in (502, 503, 504):
            return BrokerUnavailable(f"{where} answered {text} while {what}")
        if 300 <= status < 400:
            return BrokerError(
                f"{where} answered {text} while {what}: a redirect, which the scaler never "
                "follows (point host at the management API itself)"
            )
        return BrokerError(f"{where} answered {text} while {what}")

    async def aclose(self) -> None:
        await self._amqp.aclose()
        await self._http.aclose()


async def _close_amqp(conn: aiormq.abc.AbstractConnection) -> None:
    with contextlib.suppress(amqp_errors.AMQPError, ConnectionError, OSError):
        await conn.close()


async def _close_http(session: aiohttp.ClientSession) -> None:
    await session.close()
