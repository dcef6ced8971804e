"""What a shared scaler refuses before it touches a broker.

The scaler serves many teams' ScaledJobs, and trigger metadata is written by
whoever may create a ScaledJob. So, before anything else:

- :func:`check_metadata_size` bounds the metadata (entries, key and value
  lengths): a refusal is INVALID_ARGUMENT naming the key, and nothing larger is
  parsed, quoted or kept.
- :class:`BrokerPolicy` decides which hosts and ports the scaler may dial
  (``--allow-brokers``), before any connection is made. Link-local and cloud
  metadata addresses are refused unless a pattern names them explicitly, whatever
  the setting, and host names are resolved first so a name cannot hide one. An IPv6
  address that carries an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
  Teredo) is judged as both: ``[::ffff:169.254.169.254]`` is the metadata service.
- :func:`quoted` and :func:`capped` keep every message we write short: a quoted
  value is cut to about 100 characters and a whole message stays far below gRPC's
  status size, so a huge value is INVALID_ARGUMENT, never RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import math
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from scaler.errors import BrokerTimeout, BrokerUnavailable, MetadataError, PolicyError

#: Metadata limits, checked before anything else reads the metadata.
MAX_ENTRIES = 64
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 8192
MAX_TOTAL_CHARS = 65536
#: A quoted value is cut to this many characters, a whole message to MAX_MESSAGE_CHARS.
QUOTE_CHARS = 100
MAX_MESSAGE_CHARS = 1024

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Refused unless a pattern names them explicitly: link-local (where every cloud's
#: instance metadata service lives, 169.254.169.254) and AWS's IPv6 metadata address.
ALWAYS_REFUSED: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


#: IPv6 prefixes whose low 32 bits are an IPv4 address a packet reaches through a
#: translator: the well-known NAT64 prefix (RFC 6052) and the local-use one (RFC 8215).
_NAT64: tuple[ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
#: IPv4-compatible addresses (``::a.b.c.d``, deprecated by RFC 4291 but still parsed).
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def forms(ip: IP) -> tuple[IP, ...]:
    """``ip`` and every IPv4 address it carries, which a dial may end up reaching:
    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64
    (``64:ff9b::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``) and Teredo (its client)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return (ip,)
    plain = ipaddress.IPv6Address(int(ip))  # without a %zone, which networks ignore anyway
    out: list[IP] = [ip]
    if plain.ipv4_mapped is not None:
        out.append(plain.ipv4_mapped)
    if plain.sixtofour is not None:
        out.append(plain.sixtofour)
    if plain.teredo is not None:
        out.extend(plain.teredo)
    low = ipaddress.IPv4Address(int(plain) & 0xFFFFFFFF)
    if any(plain in net for net in _NAT64) or (plain in _COMPATIBLE and int(plain) > 1):
        out.append(low)
    return tuple(out)


def _in(ip: IP, network: Network) -> bool:
    """True when ``ip``, in any of its :func:`forms`, lies in ``network``."""
    return any(form.version == network.version and form in network for form in forms(ip))


def _canonical(network: Network) -> Network:
    """An IPv4-mapped IPv6 network (``::ffff:10.0.0.0/104``) as the IPv4 network it
    names, so a pattern written either way matches both ways of writing an address."""
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.prefixlen >= 96
        and network.network_address.ipv4_mapped is not None
    ):
        base = network.network_address.ipv4_mapped
        return ipaddress.IPv4Network(f"{base}/{network.prefixlen - 96}")
    return network


def refused_network(ip: IP) -> Network | None:
    """The always-refused network that ``ip`` (in any of its forms) falls in, or None."""
    return next((net for net in ALWAYS_REFUSED if _in(ip, net)), None)


def quoted(value: str) -> str:
    """``value`` for an error message: at most QUOTE_CHARS characters, cut visibly."""
    if len(value) <= QUOTE_CHARS:
        return value
    return f"{value[: QUOTE_CHARS - 1]}… ({len(value)} characters)"


def capped(message: str) -> str:
    """A whole message at most MAX_MESSAGE_CHARS characters long."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def check_metadata_size(metadata: Mapping[str, str]) -> None:
    """MetadataError (INVALID_ARGUMENT) naming the first key over a limit."""
    if len(metadata) <= MAX_ENTRIES:  # the usual case, measured in C: then nothing to name
        keys = list(map(len, metadata.keys()))
        values = list(map(len, metadata.values()))
        if not keys or (
            max(keys) <= MAX_KEY_CHARS
            and max(values) <= MAX_VALUE_CHARS
            and sum(keys) + sum(values) <= MAX_TOTAL_CHARS
        ):
            return
    if len(metadata) > MAX_ENTRIES:
        raise MetadataError(
            f"the trigger has {len(metadata)} metadata entries; at most {MAX_ENTRIES} are accepted"
        )
    total = 0
    for key, value in metadata.items():
        if len(key) > MAX_KEY_CHARS:
            raise MetadataError(
                f'metadata key "{quoted(key)}" is {len(key)} characters long; keys are at most '
                f"{MAX_KEY_CHARS}"
            )
        if len(value) > MAX_VALUE_CHARS:
            raise MetadataError(
                f'parameter "{key}" value is {len(value)} characters long; values are at most '
                f"{MAX_VALUE_CHARS}"
            )
        total += len(key) + len(value)
    if total > MAX_TOTAL_CHARS:
        raise MetadataError(
            f"the trigger's metadata is {total} characters long; at most {MAX_TOTAL_CHARS} in all"
        )


@dataclass(frozen=True)
class Destination:
    """A host and port the scaler would dial for a trigger; ``what`` names it in errors."""

    host: str
    port: int
    what: str


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_V4_NET = rf"{_V4}(?:/(?:3[0-2]|[12]?[0-9]))?"


def _v6() -> str:
    h = r"[0-9A-Fa-f]{1,4}"
    forms = (
        rf"(?:{h}:){{7}}{h}", rf"(?:{h}:){{1,7}}:", rf"(?:{h}:){{1,6}}:{h}",
        *(rf"(?:{h}:){{1,{6 - n}}}(?::{h}){{2,{n + 1}}}" for n in range(1, 5)),
        rf"{h}:(?::{h}){{1,6}}", rf":(?:(?::{h}){{1,7}}|:)",
        # the last 32 bits as an IPv4 address (::ffff:10.0.0.1): six groups before it,
        # "::" standing for one or more of them
        rf"(?:{h}:){{6}}{_V4}", rf"::(?:{h}:){{0,5}}{_V4}",
        *(rf"(?:{h}:){{{a}}}:(?:{h}:){{0,{5 - a}}}{_V4}" for a in range(1, 6)),
    )  # fmt: skip
    return f"(?:{'|'.join(forms)})"


_V6 = _v6()
_V6_NET = rf"{_V6}(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?"
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"

#: What one ``--allow-brokers`` entry may be, as a regular expression that Python, Go
#: (helm's schema check) and JSON Schema read alike: the chart's values.schema.json
#: holds ``^(?:BROKER_GRAMMAR)$`` (a test keeps them equal), so a value the chart
#: accepts is one the scaler starts with. A name (``*`` wildcards), an IPv4 address or
#: CIDR network, or an IPv6 one (in brackets to give a port), each with ``:port`` or
#: ``:*``.
BROKER_GRAMMAR = (
    rf"(?:[A-Za-z0-9*._-]+|{_V4_NET})(?::(?:{_PORT}|\*))?"
    rf"|\[{_V6_NET}\](?::(?:{_PORT}|\*))?|{_V6_NET}"
)
#: One ``--allow-aws-endpoints`` entry, the same way: an http(s) URL with a host name,
#: an IPv4 address or a bracketed IPv6 one, an optional port and path.
ENDPOINT_GRAMMAR = (
    rf"https?://(?:{_LABEL}(?:\.{_LABEL})*|{_V4}|\[{_V6}\])(?::{_PORT})?(?:/[A-Za-z0-9._~/-]*)?"
)
_BROKER = re.compile(BROKER_GRAMMAR)


@dataclass(frozen=True)
class Pattern:
    """One ``--allow-brokers`` entry: a host name (``*`` wildcards), an IP or CIDR
    network, each with an optional ``:port``."""

    text: str
    name: str | None  # lower-case name pattern, or None for a network
    network: Network | None
    port: int | None  # None: any port

    @classmethod
    def parse(cls, text: str) -> Pattern:
        spec = text.strip()
        if not spec:
            raise ValueError("an empty broker pattern")
        port: int | None = None
        host = spec
        if spec.startswith("["):  # [IPv6 or IPv6/len]:port
            end = spec.find("]")
            if end < 0:
                raise ValueError(f"{text!r}: a '[' without ']'")
            host, rest = spec[1:end], spec[end + 1 :]
            if rest:
                if not rest.startswith(":"):
                    raise ValueError(f"{text!r}: expected ':port' after ']'")
                port = _port(text, rest[1:])
        elif spec.count(":") == 1:
            host, _, port_text = spec.partition(":")
            port = _port(text, port_text)
        if not _BROKER.fullmatch(spec):
            raise ValueError(
                f"{text!r}: a host name (wildcards '*'), an IPv4 address or CIDR network, or an "
                "IPv6 one ([brackets] to add a port), optionally with ':port' (1-65535 or '*')"
            )
        try:
            network = _canonical(ipaddress.ip_network(host, strict=False))
        except ValueError:
            network = None
        if network is not None:
            return cls(spec, None, network, port)
        if not re.fullmatch(r"[A-Za-z0-9*.\-_]+", host):
            raise ValueError(
                f"{text!r}: a host name (wildcards '*'), an IP address or a CIDR network, "
                "optionally with ':port'"
            )
        return cls(spec, host.lower().rstrip("."), None, port)

    def port_matches(self, port: int) -> bool:
        return self.port is None or self.port == port

    def names(self, host: str) -> bool:
        return self.name is not None and fnmatch.fnmatchcase(host.lower().rstrip("."), self.name)

    def contains(self, ips: Sequence[IP]) -> bool:
        """True when this is a network pattern holding every one of ``ips`` (each in
        any of its :func:`forms`)."""
        network = self.network
        return network is not None and bool(ips) and all(_in(ip, network) for ip in ips)

    def names_refused(self, ip: IP) -> bool:
        """True when this pattern names ``ip`` explicitly inside an always-refused
        network: the pattern is a network lying wholly within that refused one
        (``169.254.169.254/32``), not a wider one that merely contains it
        (``0.0.0.0/0``, ``128.0.0.0/1``)."""
        network = self.network
        refused = refused_network(ip)
        return (
            network is not None
            and refused is not None
            and network.version == refused.version
            and network.subnet_of(refused)  # type: ignore[arg-type]
            and _in(ip, network)
        )


def _port(text: str, port_text: str) -> int | None:
    if port_text in ("", "*"):
        return None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be 1 to 65535 or '*'")
    return int(port_text)


Resolver = Callable[[str, int], Awaitable[list[IP]]]


async def _getaddrinfo(host: str, port: int) -> list[IP]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class BrokerPolicy:
    """Which destinations the scaler may dial. With no patterns, any destination but
    the always-refused ranges; with patterns, only what one of them allows."""

    def __init__(
        self,
        patterns: Iterable[str] = (),
        *,
        resolve: Resolver = _getaddrinfo,
        resolve_seconds: float = 5.0,
        cache_seconds: float = 30.0,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.patterns = tuple(Pattern.parse(p) for p in patterns)
        self._resolve = resolve
        self._resolve_seconds = resolve_seconds
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._resolved: OrderedDict[str, tuple[float, tuple[IP, ...]]] = OrderedDict()
        #: Destinations allowed, until when: an address for good (the patterns do not
        #: change while the scaler runs), a name until its resolution expires. A poll
        #: of a known broker is then one lookup; refusals are decided afresh each time.
        self._allowed: OrderedDict[Destination, float] = OrderedDict()

    def allowed(self, destinations: Iterable[Destination]) -> bool:
        """True when every destination is allowed now from what :meth:`check` decided
        before; False means only that :meth:`check` must decide (it may still allow)."""
        now = self._clock()
        for dest in destinations:
            until = self._allowed.get(dest)
            if until is None or now >= until:
                return False
        return True

    async def check(self, destinations: Iterable[Destination]) -> None:
        """PolicyError (PERMISSION_DENIED) for the first destination refused; nothing is
        dialed. A name that does not resolve within ``resolve_seconds`` is
        DEADLINE_EXCEEDED, one that does not resolve UNAVAILABLE, as the broker read
        would have been."""
        for dest in destinations:
            until = self._allowed.get(dest)
            if until is not None and self._clock() < until:
                continue
            await self._check(dest)

    async def _check(self, dest: Destination) -> None:
        where = f"{dest.what} {_hostport(dest)}"
        ips = await self._ips(dest)
        self._verdict(dest, ips, where)
        resolved = self._resolved.get(dest.host.lower())
        self._allowed[dest] = (
            resolved[0] + self._cache_seconds if resolved is not None else math.inf
        )
        self._allowed.move_to_end(dest)
        if len(self._allowed) > self._cache_size:
            self._allowed.popitem(last=False)

    def _verdict(self, dest: Destination, ips: tuple[IP, ...], where: str) -> None:
        ports = [p for p in self.patterns if p.port_matches(dest.port)]
        for ip in ips:
            if refused_network(ip) is not None and not any(p.names_refused(ip) for p in ports):
                raise PolicyError(
                    f"{where} is a link-local or cloud metadata address ({ip}); the scaler "
                    "never dials one unless --allow-brokers names it explicitly"
                )
        if not self.patterns:
            return
        if any(p.contains(ips) or p.names(dest.host) for p in ports):
            return
        raise PolicyError(
            f"{where} is not an allowed broker address: the scaler's --allow-brokers "
            "(KQS_ALLOW_BROKERS) does not list it, so it is not dialed"
        )

    async def _ips(self, dest: Destination) -> tuple[IP, ...]:
        try:
            return (ipaddress.ip_address(dest.host),)
        except ValueError:
            pass
        key = dest.host.lower()
        now = self._clock()
        cached = self._resolved.get(key)
        if cached is not None and now - cached[0] < self._cache_seconds:
            self._resolved.move_to_end(key)
            return cached[1]
        try:
            async with asyncio.timeout(self._resolve_seconds):
                ips = tuple(await self._resolve(dest.host, dest.port))
        except TimeoutError:
            raise BrokerTimeout(
                f'{dest.what} host "{quoted(dest.host)}" did not resolve within '
                f"{self._resolve_seconds:g}s"
            ) from None
        except (OSError, UnicodeError) as exc:
            raise BrokerUnavailable(
                f'{dest.what} host "{quoted(dest.host)}" does not resolve ({type(exc).__name__})'
            ) from None
        self._resolved[key] = (now, ips)
        if len(self._resolved) > self._cache_size:
            self._resolved.popitem(last=False)
        return ips


def _hostport(dest: Destination) -> str:
    host = quoted(dest.host)
    return f"[{host}]:{dest.port}" if ":" in host else f"{host}:{dest.port}"
