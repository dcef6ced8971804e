"""``scalerType: rabbitmq``: KEDA's built-in RabbitMQ trigger, over AMQP or the
management HTTP API.

Protocols (``protocol: auto`` picks by the host URL's scheme):
- AMQP (``amqp://``, ``amqps://``): queue depth from a passive queue declare, on a
  connection kept open per broker identity. Each read uses its own short-lived
  channel, so a missing queue (which makes the broker close the channel) never
  disturbs reads of other queues on the same connection. The count comes from the
  broker every time: there is no client-side declare cache (aiormq, not a robust
  aio-pika channel). AMQP counts ready messages only.
- HTTP (``http://``, ``https://``): ``GET /api/queues/<vhost>/<queue>`` on the
  management API: ``messages`` (ready + unacknowledged) or ``messages_ready`` with
  ``excludeUnacknowledged``, plus publish and deliver_get rates; with ``useRegex``,
  one page of ``/api/queues/<vhost>?use_regex=true&name=...`` combined by
  ``operation`` (sum, avg rounding counts down, max starting at 0). Vhost and queue
  names are percent-encoded as path segments (``/`` vhost is ``%2F``).

Modes (``mode`` + ``value``, or neither = QueueLength 20, or legacy ``queueLength``),
each with KEDA's activation rule; see :class:`RabbitRule`. The management API's
numbers lag by its statistics interval (5 s by default); a queue whose statistics
have not been emitted yet is UNAVAILABLE, not 0.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import ssl
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import aiohttp
import aiormq
import aiormq.abc
import aiormq.exceptions as amqp_errors
from yarl import URL

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
from scaler.guard import Destination, quoted
from scaler.keda.scaledjob import milli
from scaler.logs import redact
from scaler.metadata import (
    Secret,
    TriggerMetadata,
    auth_key,
    fingerprint,
    key,
    one_of,
    secret_key,
)

QUEUE_LENGTH = "QueueLength"
MESSAGE_RATE = "MessageRate"
DELIVER_GET_RATE = "DeliverGetRate"
PUBLISHED_TO_DELIVERED = "PublishedToDeliveredRatio"
CONSUMPTION_TIME = "ExpectedQueueConsumptionTime"
MODES = (QUEUE_LENGTH, MESSAGE_RATE, DELIVER_GET_RATE, PUBLISHED_TO_DELIVERED, CONSUMPTION_TIME)
DEFAULT_QUEUE_LENGTH = 20.0

_UNIT_NANOS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000,
}  # fmt: skip
_MAX_NANOS = 2**63 - 1  # a Go time.Duration is an int64 of nanoseconds


def _go_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds, or None where Go refuses ``text``
    (syntax, unknown unit, or beyond int64 nanoseconds, about 292 years)."""
    s, negative = text, False
    if s[:1] in ("-", "+"):
        negative, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = 0
    while s:
        m = re.match(r"([0-9]*)(?:\.([0-9]*))?", s)
        assert m is not None  # the pattern matches the empty string
        whole, fraction = m.group(1), m.group(2)
        if not whole and not fraction:
            return None  # neither digits before nor after the point
        s = s[m.end() :]
        unit = re.match(r"[^0-9.]+", s)
        if unit is None or unit.group() not in _UNIT_NANOS:
            return None  # a missing or unknown unit
        s = s[unit.end() :]
        scale = _UNIT_NANOS[unit.group()]
        value = int(whole or "0")
        if value > 2**63 // scale:
            return None
        value *= scale
        if fraction:
            # Go keeps at most the digits that fit in int64, and rounds like float64.
            digits = fraction[:18]
            value += int(float(int(digits)) * (scale / 10 ** len(digits)))
        total += value
        if total > 2**63:
            return None
    if not negative and total > _MAX_NANOS:
        return None
    return -total if negative else total


def parse_timeout(text: str) -> float:
    """KEDA's ``timeout`` (typed config, ``time.Duration``): Go's ``ParseDuration``
    (``5s``, ``1m30s``, ``0``), else whole milliseconds as ``strconv.ParseInt``
    reads them (``5000``, ``+5000``). Returns seconds; raises MetadataError for
    anything else, for a negative value, and for milliseconds beyond what a Go
    duration holds (KEDA's multiplication would wrap there)."""
    bad = MetadataError(
        f'parameter "timeout" value "{quoted(text)}" must be milliseconds (e.g. 5000) or a '
        'duration (e.g. "5s", "1m30s"), not negative, at most 292 years'
    )
    nanos = _go_duration(text)
    if nanos is None:
        if not re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII):
            raise bad
        millis = int(text)
        if not -(2**63) <= millis < 2**63 or millis * 1_000_000 > _MAX_NANOS:
            raise bad
        nanos = millis * 1_000_000
    if nanos < 0:
        raise bad
    return nanos / 1e9


def _check_url(raw: str) -> None:
    """MetadataError when ``host`` is not a URL with a host, in words that never quote
    it (it holds credentials), and before anything else parses it."""
    hint = (
        'parameter "host" (or "hostFromEnv") is not a usable URL: it must be '
        "scheme://[user:password@]host[:port][/vhost], with '/', '#', '?' and '@' in the user "
        "name or password percent-encoded (e.g. %2F for '/')"
    )
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise MetadataError(hint) from None
    if not parts.hostname or "@" in parts.path + parts.query + parts.fragment:
        # "user:pa/ss@host": the authority ends at the "/", so the rest of the password
        # and the real host would be read as the vhost. Refuse rather than guess.
        raise MetadataError(hint)


def _local(exc: BaseException) -> str:
    """What of a connection error a message may show: our own stack's text (refused,
    TLS verification, DNS), cut short; for a close the server sent, only its class
    (its reply text is the server's to write, not ours to echo)."""
    if isinstance(exc, amqp_errors.ConnectionClosed | amqp_errors.ChannelClosed):
        return type(exc).__name__
    return redact(str(exc))[:200] or type(exc).__name__


#: The largest management API answer read (a page of pageSize queues fits well).
_MAX_BODY = 32 * 2**20


def _masked(url: str) -> str:
    """The URL without user info, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class QueueStats:
    """One read: counts and the management API's rates (0 over AMQP)."""

    messages: int | None  # ready + unacknowledged (AMQP: ready); None: no statistics yet
    ready: int | None
    publish_rate: float = 0.0
    deliver_get_rate: float = 0.0


@dataclass(frozen=True)
class RabbitRule:
    """KEDA's value and activation per mode (rabbitmq_scaler.go, August 2026)."""

    mode: str
    activation: float
    exclude_unacknowledged: bool

    def __call__(self, sample: QueueStats) -> tuple[float, bool]:
        publish, deliver, act = sample.publish_rate, sample.deliver_get_rate, self.activation
        if self.mode in (DELIVER_GET_RATE, PUBLISHED_TO_DELIVERED):
            count = 0.0  # not used: a missing message count does not matter
        else:
            count = self._count(sample)
        if self.mode == MESSAGE_RATE:
            return publish, publish > act or count > act
        if self.mode == DELIVER_GET_RATE:
            return deliver, deliver > act
        if self.mode == PUBLISHED_TO_DELIVERED:
            if publish > 0 and deliver == 0:
                ratio = act
            elif publish > 0 and deliver > 0:
                ratio = publish / deliver
            else:
                ratio = 0.0
            return ratio, ratio > act or (publish > 0 and deliver == 0)
        if self.mode == CONSUMPTION_TIME:
            if count == 0:
                eta = 0.0  # an empty queue takes no time to drain (KEDA #8033)
            elif deliver == 0:
                eta = act
            else:
                eta = (publish - deliver) / deliver + count / deliver
            return eta, eta > act or (deliver == 0 and count > 0)
        return count, count > act

    def _count(self, sample: QueueStats) -> float:
        field = "messages_ready" if self.exclude_unacknowledged else "messages"
        count = sample.ready if self.exclude_unacknowledged else sample.messages
        if count is None:
            raise BrokerUnavailable(
                f'the management API has no "{field}" statistics for the queue yet; they '
                "appear within its statistics interval (5 s by default)"
            )
        return float(count)


@dataclass(frozen=True)
class RabbitServer:
    """One broker identity: protocol, URL (with credentials, as a Secret), TLS."""

    protocol: Literal["amqp", "http"]
    url: Secret  # amqp: the connection URL with vhost; http: base URL up to the vhost
    username: Secret | None
    password: Secret | None
    display: str  # the URL without credentials
    unsafe_ssl: bool
    http_timeout: float | None
    #: CA, client certificate and key from a TriggerAuthentication (tls: enable).
    client_tls: tlsfiles.ClientTls = tlsfiles.ClientTls()


@dataclass(frozen=True)
class RabbitQuery:
    server: RabbitServer
    vhost: str  # http: the encoded vhost path segment, e.g. "%2F"
    queue: str
    use_regex: bool
    page_size: int
    operation: str

    def destinations(self) -> tuple[Destination, ...]:
        parts = urlsplit(self.server.display)
        default = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}[parts.scheme]
        what = "RabbitMQ" if self.server.protocol == "amqp" else "RabbitMQ management API"
        return (Destination(parts.hostname or "", parts.port or default, what),)


@dataclass(frozen=True, kw_only=True)
class RabbitMetadata(TriggerMetadata):
    scaler_types: ClassVar[tuple[str, ...]] = ("rabbitmq",)

    queue_name: str = key("queueName", doc="the queue (a regex with useRegex)")
    host: Secret | None = secret_key("host", doc="amqp(s):// or http(s):// URL")
    protocol: str = key("protocol", default="auto", check=one_of("auto", "amqp", "http"))
    mode: str = key("mode", default="", doc="what to scale on")
    value: float = key("value", default=0.0, doc="target per Job for the mode")
    queue_length: float = key("queueLength", default=0.0, doc="deprecated: mode QueueLength")
    activation_value: float = key("activationValue", default=0.0)
    vhost_name: str = key("vhostName", default="", doc="overrides the vhost in host")
    use_regex: bool = key("useRegex", default=False)
    operation: str = key("operation", default="sum", check=one_of("sum", "avg", "max"))
    page_size: int = key("pageSize", default=100)
    exclude_unacknowledged: bool = key("excludeUnacknowledged", default=False)
    timeout: str = key("timeout", default="", doc="HTTP timeout, ms or duration")
    unsafe_ssl: bool = key("unsafeSsl", default=False)
    username: Secret | None = secret_key("username", plain=False)
    password: Secret | None = secret_key("password", plain=False)
    tls_param: str = auth_key("tls", secret=False, doc="enable or disable (TriggerAuthentication)")
    ca: Secret | None = auth_key("ca", doc="CA certificate, PEM (TriggerAuthentication)")
    cert: Secret | None = auth_key("cert", doc="client certificate, PEM (TriggerAuthentication)")
    client_key: Secret | None = auth_key("key", doc="client key, PEM (TriggerAuthentication)")
    key_password: Secret | None = auth_key("keyPassword", doc="the client key's password")

    def effective_protocol(self) -> Literal["amqp", "http"]:
        assert self.host is not None
        scheme = urlsplit(self.host.reveal()).scheme.lower()
        by_scheme = {"amqp": "amqp", "amqps": "amqp", "http": "http", "https": "http"}
        if scheme not in by_scheme:
            raise MetadataError(
                f'parameter "host" has the URL scheme "{scheme}": use amqp://, amqps://, '
                "http:// or https://"
            )
        if self.protocol != "auto" and self.protocol != by_scheme[scheme]:
            raise MetadataError(
                f'parameter "protocol" value "{self.protocol}" does not fit a {scheme}:// host'
            )
        return "amqp" if by_scheme[scheme] == "amqp" else "http"

    def target_and_mode(self) -> tuple[str, float]:
        """KEDA's mode/value rules, in KEDA's order."""
        if self.queue_length == 0 and not self.mode and self.value == 0:
            return QUEUE_LENGTH, DEFAULT_QUEUE_LENGTH
        if self.queue_length != 0 and (self.mode or self.value != 0):
            raise MetadataError('"queueLength" is deprecated: use "mode" and "value" instead')
        if self.queue_length != 0:
            mode, value = QUEUE_LENGTH, self.queue_length
            name = "queueLength"
        else:
            if not self.mode:
                raise MetadataError('"mode" must be given with "value"')
            if self.value == 0:
                raise MetadataError(f'"value" must be given with "mode" ({self.mode})')
            mode, value, name = self.mode, self.value, "value"
        if mode not in MODES:
            raise MetadataError(
                f'parameter "mode" value "{mode}" must be one of {", ".join(MODES)}'
            )
        if value < 0:
            raise MetadataError(f'parameter "{name}" value "{value:g}" must be greater than 0')
        if milli(value) == 0:
            raise MetadataError(
                f'parameter "{name}" value "{value:g}" must be at least 0.001: KEDA keeps 3 '
                "decimals of a target, so a smaller one is 0 and no Job would ever be created"
            )
        return mode, value

    def validate(self, scaler_type: str) -> None:
        if self.host is None:
            raise MetadataError(
                'parameter "host" (or "hostFromEnv") is required for scalerType "rabbitmq": '
                "an amqp(s):// or http(s):// URL of the broker"
            )
        tlsfiles.check_tls_param(self.tls_param)
        if (self.cert is None) != (self.client_key is None):
            raise MetadataError(
                'TriggerAuthentication parameters "cert" and "key" must be given together'
            )
        _check_url(self.host.reveal())
        if self.use_regex:
            try:
                re.compile(self.queue_name)
            except re.error as exc:
                # The management API answers an invalid pattern with no queues: a made-up 0.
                raise MetadataError(
                    f'parameter "queueName" value "{self.queue_name}" is not a valid regular '
                    f"expression ({exc}), and useRegex is true"
                ) from None
        if self.page_size < 1:
            raise MetadataError(
                f'parameter "pageSize" value "{self.page_size}" must be 1 or greater'
            )
        if (self.username is None) != (self.password is None):
            raise MetadataError('"usernameFromEnv" and "passwordFromEnv" must be given together')
        protocol = self.effective_protocol()
        if protocol == "amqp":
            if self.use_regex:
                raise MetadataError('"useRegex" needs the HTTP protocol (an http(s):// host)')
            if self.exclude_unacknowledged:
                raise MetadataError(
                    '"excludeUnacknowledged" needs the HTTP protocol: AMQP counts ready '
                    "messages only"
                )
        mode, _ = self.target_and_mode()
        if mode != QUEUE_LENGTH and protocol != "http":
            raise MetadataError(
                f'mode "{mode}" needs the HTTP protocol (an http(s):// host): AMQP reports '
                "queue depth only"
            )
        if self.timeout:
            seconds = parse_timeout(self.timeout)
            # KEDA checks this only when mode and value are given: its validateTrigger
            # returns early for the default and for the legacy queueLength.
            explicit = self.queue_length == 0 and bool(self.mode) and self.value != 0
            if protocol == "amqp" and seconds != 0 and explicit:
                raise MetadataError(
                    f'parameter "timeout" value "{self.timeout}" works only with the HTTP '
                    "protocol (AMQP reads are bounded by the server's --read-timeout)"
                )

    def server(self) -> tuple[RabbitServer, str]:
        """The broker identity and, for HTTP, the encoded vhost segment."""
        assert self.host is not None
        raw = self.host.reveal()
        protocol = self.effective_protocol()
        parts = urlsplit(raw)
        timeout = parse_timeout(self.timeout) if self.timeout else None
        if protocol == "amqp":
            url = URL(raw)
            if self.vhost_name:
                url = url.with_path("/" + quote(self.vhost_name, safe=""), encoded=True)
            if self.username is not None and self.password is not None:
                url = url.with_user(self.username.reveal()).with_password(self.password.reveal())
            elif self.tls_param == "enable" and self.cert is not None and not url.password:
                # KEDA: a client certificate and no password sign in with SASL EXTERNAL.
                url = url.update_query(auth="external")
            server = RabbitServer(
                "amqp", Secret(str(url)), None, None, _masked(str(url)), self.unsafe_ssl, None,
                self._client_tls(),
            )  # fmt: skip
            return server, ""
        # KEDA: the last path segment is the vhost, what comes before it a path prefix.
        segments = parts.path.split("/")
        vhost = segments[-1]
        prefix = "/".join(segments[:-1]).rstrip("/")
        if self.vhost_name:
            vhost = quote(self.vhost_name, safe="")
        if vhost in ("", "/"):
            vhost = "%2F"
        username = parts.username
        password = parts.password
        base = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], prefix, "", ""))
        user = self.username or (Secret(username) if username else None)
        secret = self.password or (Secret(password) if password else None)
        server = RabbitServer(
            "http", Secret(base), user, secret, _masked(base), self.unsafe_ssl, timeout,
            self._client_tls(),
        )  # fmt: skip
        return server, vhost

    def _client_tls(self) -> tlsfiles.ClientTls:
        """KEDA uses the TLS parameters only with ``tls: enable``."""
        if self.tls_param != "enable":
            return tlsfiles.ClientTls(unsafe=self.unsafe_ssl)
        return tlsfiles.ClientTls(
            ca=self.ca, cert=self.cert, key=self.client_key, key_password=self.key_password,
            unsafe=self.unsafe_ssl,
        )  # fmt: skip

    def spec(self, scaler_type: str) -> tuple[str, float]:
        _, target = self.target_and_mode()
        return metric_name("rabbitmq", quote_plus(self.queue_name, safe="")), target

    def trigger(self, scaler_type: str) -> Trigger:
        mode, _ = self.target_and_mode()
        name, target = self.spec(scaler_type)
        server, vhost = self.server()
        return Trigger(
            scaler_type=scaler_type,
            metric_name=name,
            target=target,
            activation=self.activation_value,
            query=RabbitQuery(
                server, vhost, self.queue_name, self.use_regex, self.page_size, self.operation
            ),
            rule=RabbitRule(mode, self.activation_value, self.exclude_unacknowledged),
        )


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


def _stat_count(item: dict[str, Any], field: str) -> int | None:
    value = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrokerUnavailable(f'the management API answered a non-integer "{field}"')
    return value


def _rate(rates: dict[str, Any], field: str) -> float:
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
    return QueueStats(
        messages=_stat_count(item, "messages"),
        ready=_stat_count(item, "messages_ready"),
        publish_rate=_rate(rates, "publish_details"),
        deliver_get_rate=_rate(rates, "deliver_get_details"),
    )


def _ssl_context(server: RabbitServer) -> ssl.SSLContext:
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

    async def read(self, query: Any) -> QueueStats:
        assert isinstance(query, RabbitQuery)
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
            context = _ssl_context(server) if url.scheme == "amqps" else None
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
                connector=aiohttp.TCPConnector(ssl=_ssl_context(server)),
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
            return _stats(payload)
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
        return _combine(items, query.operation)

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
