"""The ``rabbitmq`` trigger metadata (KEDA's keys, modes and defaults), its query and
the rule that turns a reading into KEDA's value, parsed without any I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from yarl import URL

from scaler.brokers import tlsfiles
from scaler.errors import (
    BrokerUnavailable,
    MetadataError,
)
from scaler.guard import Destination, quoted
from scaler.keda.scaledjob import milli
from scaler.metadata import (
    AgeKeys,
    Secret,
    auth_key,
    key,
    one_of,
    secret_key,
)
from scaler.trigger import AnyTrigger, Trigger, aging, metric_name

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
    #: measure: age: the head message's timestamp property (Unix seconds), None when
    #: the queue has no ready message.
    oldest: float | None = None

    def age_at(self, now: float) -> float:
        """Seconds the head message has waited at ``now`` (0 for an empty queue)."""
        return 0.0 if self.oldest is None else max(0.0, now - self.oldest)


@dataclass(frozen=True)
class RabbitRule:
    """KEDA's value and activation per mode (rabbitmq_scaler.go, August 2026)."""

    mode: str
    activation: float
    exclude_unacknowledged: bool

    def __call__(self, sample: QueueStats, now: float) -> tuple[float, bool]:
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
    #: measure: age: read the head message's timestamp (management API)
    age: bool = False

    def destinations(self) -> tuple[Destination, ...]:
        parts = urlsplit(self.server.display)
        default = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}[parts.scheme]
        what = "RabbitMQ" if self.server.protocol == "amqp" else "RabbitMQ management API"
        return (Destination(parts.hostname or "", parts.port or default, what),)


@dataclass(frozen=True, kw_only=True)
class RabbitMetadata(AgeKeys):
    scaler_types: ClassVar[tuple[str, ...]] = ("rabbitmq",)

    queue_name: str = key("queueName", doc="the queue (a regex with useRegex)")
    host: Secret | None = secret_key(
        "host", doc="amqp(s):// or http(s):// URL", auth_order="tm;auth;env", role="target"
    )
    protocol: str = key(
        "protocol", default="auto", check=one_of("auto", "amqp", "http"), auth_order="tm;auth"
    )
    mode: str = key("mode", default="", doc="what to scale on")
    value: float = key("value", default=0.0, doc="target per Job for the mode")
    queue_length: float = key("queueLength", default=0.0, doc="deprecated: mode QueueLength")
    activation_value: float = key("activationValue", default=0.0)
    vhost_name: str = key(
        "vhostName", default="", doc="overrides the vhost in host", auth_order="tm;auth"
    )
    use_regex: bool = key("useRegex", default=False)
    operation: str = key("operation", default="sum", check=one_of("sum", "avg", "max"))
    page_size: int = key("pageSize", default=100)
    exclude_unacknowledged: bool = key("excludeUnacknowledged", default=False)
    timeout: str = key("timeout", default="", doc="HTTP timeout, ms or duration")
    unsafe_ssl: bool = key("unsafeSsl", default=False)
    username: Secret | None = secret_key("username", plain=False, auth_order="auth;env")
    password: Secret | None = secret_key("password", plain=False, auth_order="auth;env")
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
        if self.wants_age and (self.mode or self.queue_length or self.value):
            raise MetadataError(
                'parameter "measure" value "age" takes its target from "targetAge": remove '
                '"mode", "value" and "queueLength"'
            )
        self.check_age(
            None if protocol == "http" else
            "AMQP reports no message times; read the management API (an http(s):// host), "
            "which gives the head message's timestamp"
        )  # fmt: skip
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
        name = metric_name("rabbitmq", quote_plus(self.queue_name, safe=""))
        return self.age_spec(name, target)

    def trigger(self, scaler_type: str) -> AnyTrigger:
        mode, _ = self.target_and_mode()
        name, target = self.spec(scaler_type)
        server, vhost = self.server()
        if self.wants_age:
            query = RabbitQuery(
                server, vhost, self.queue_name, self.use_regex, self.page_size, self.operation,
                age=True,
            )  # fmt: skip
            return aging(scaler_type, (name, target), self.activation_age, query)
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
