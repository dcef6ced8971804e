"""The broker policy (--allow-brokers), metadata limits and message bounds."""

from __future__ import annotations

import ipaddress

import pytest

from scaler.errors import BrokerUnavailable, MetadataError, PolicyError
from scaler.guard import (
    MAX_ENTRIES,
    MAX_MESSAGE_CHARS,
    MAX_VALUE_CHARS,
    BrokerPolicy,
    Destination,
    Pattern,
    capped,
    check_metadata_size,
    quoted,
)


class Resolver:
    """Answers from a table and counts lookups; a name not in it does not resolve."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address]:
        self.lookups.append(host)
        if host not in self.table:
            raise OSError("Name or service not known")
        return [ipaddress.ip_address(ip) for ip in self.table[host]]  # type: ignore[misc]


def redis(host: str, port: int = 6379) -> Destination:
    return Destination(host, port, "Redis")


async def allowed(policy: BrokerPolicy, dest: Destination) -> bool:
    try:
        await policy.check([dest])
    except PolicyError:
        return False
    return True


@pytest.mark.parametrize(
    ("patterns", "dest", "expected"),
    [
        ((), redis("10.1.2.3"), True),  # no list: any broker ...
        ((), redis("169.254.169.254", 80), False),  # ... but never the metadata service
        ((), Destination("fd00:ec2::254", 80, "SQS endpoint"), False),
        ((), redis("fe80::1"), False),
        (("10.0.0.0/8",), redis("10.1.2.3"), True),
        (("10.0.0.0/8",), redis("11.1.2.3"), False),
        (("10.0.0.0/8:6379",), redis("10.1.2.3", 6380), False),
        (("redis.data.svc.cluster.local",), redis("redis.data.svc.cluster.local"), True),
        (("*.data.svc.cluster.local:6379",), redis("REDIS.data.svc.cluster.local."), True),
        (("*.data.svc.cluster.local:6379",), redis("redis.other.svc.cluster.local"), False),
        (("*",), redis("169.254.169.254"), False),  # a wildcard is not explicit
        (("0.0.0.0/0",), redis("169.254.169.254"), False),  # nor is the whole Internet
        (("169.254.169.254/32:80",), redis("169.254.169.254", 80), True),  # explicit
        (("[fd00:ec2::254]:80",), Destination("fd00:ec2::254", 80, "SQS endpoint"), True),
        (("[::1]",), redis("::1"), True),
        # An IPv6 address carrying a refused IPv4 one is refused in every form (#18).
        ((), redis("::ffff:169.254.169.254"), False),
        ((), redis("::ffff:a9fe:a9fe"), False),
        ((), redis("::169.254.169.254"), False),  # IPv4-compatible
        ((), redis("64:ff9b::a9fe:a9fe"), False),  # NAT64
        ((), redis("64:ff9b:1::a9fe:a9fe"), False),  # local-use NAT64
        ((), redis("2002:a9fe:a9fe::1"), False),  # 6to4
        ((), redis("2001:0:4136:e378:8000:63bf:5601:5601"), False),  # Teredo, client 169.254.x
        (("*",), redis("::ffff:169.254.169.254"), False),
        (("::/0",), redis("::ffff:169.254.169.254"), False),
        # Only a pattern inside a refused network names it: a wide one merely contains it.
        (("128.0.0.0/1",), redis("169.254.169.254"), False),
        (("::/1",), redis("::ffff:169.254.169.254"), False),
        (("169.254.169.254/32:80",), redis("::ffff:169.254.169.254", 80), True),
        (("[::ffff:169.254.169.254]:80",), redis("169.254.169.254", 80), True),
        # Allowlist patterns match every form of an address, either way round.
        (("10.0.0.0/8",), redis("::ffff:10.1.2.3"), True),
        (("[::ffff:10.0.0.0/104]",), redis("10.1.2.3"), True),
        (("10.0.0.0/8",), redis("64:ff9b::b01:203"), False),  # 11.1.2.3 behind NAT64
        ((), redis("::1"), True),
    ],
)
async def test_patterns(patterns: tuple[str, ...], dest: Destination, expected: bool) -> None:
    names = ("redis.data.svc.cluster.local", "REDIS.data.svc.cluster.local.",
             "redis.other.svc.cluster.local")  # fmt: skip
    policy = BrokerPolicy(patterns, resolve=Resolver({n: ["10.0.0.7"] for n in names}))
    assert await allowed(policy, dest) is expected


async def test_a_name_is_resolved_so_it_cannot_hide_a_metadata_address() -> None:
    resolver = Resolver({"innocent.example": ["169.254.169.254"], "redis.data": ["10.0.0.5"]})
    policy = BrokerPolicy(("*",), resolve=resolver)
    with pytest.raises(PolicyError, match="link-local or cloud metadata address"):
        await policy.check([redis("innocent.example")])
    await policy.check([redis("redis.data")])
    # A network pattern holds a name when every address it resolves to is inside.
    policy = BrokerPolicy(("10.0.0.0/24",), resolve=resolver)
    await policy.check([redis("redis.data")])


async def test_resolutions_are_cached_and_failures_are_unavailable() -> None:
    now = [0.0]
    resolver = Resolver({"redis.data": ["10.0.0.5"]})
    policy = BrokerPolicy((), resolve=resolver, cache_seconds=30, clock=lambda: now[0])
    for _ in range(3):
        await policy.check([redis("redis.data")])
    assert resolver.lookups == ["redis.data"]
    now[0] = 31
    await policy.check([redis("redis.data")])
    assert resolver.lookups == ["redis.data", "redis.data"]
    with pytest.raises(BrokerUnavailable, match=r'Redis host "nowhere\.invalid" does not resolve'):
        await policy.check([redis("nowhere.invalid")])


async def test_a_refusal_names_the_address_and_the_setting() -> None:
    policy = BrokerPolicy(("10.0.0.0/8",), resolve=Resolver({}))
    with pytest.raises(PolicyError) as err:
        await policy.check([Destination("192.168.1.1", 15672, "RabbitMQ management API")])
    assert err.value.code == "PERMISSION_DENIED"
    assert err.value.message.startswith("RabbitMQ management API 192.168.1.1:15672 is not an")
    assert "--allow-brokers" in err.value.message


@pytest.mark.parametrize("bad", ["", "host:port", "a b", "[::1", "10.0.0.0/8:70000"])
def test_bad_patterns_are_refused_at_start_up(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the settings layer names the flag
        Pattern.parse(bad)


def test_metadata_limits_name_the_key() -> None:
    check_metadata_size({"listName": "x" * MAX_VALUE_CHARS})
    with pytest.raises(MetadataError, match='parameter "listName" value is 8193 characters long'):
        check_metadata_size({"listName": "x" * (MAX_VALUE_CHARS + 1)})
    with pytest.raises(MetadataError, match="65 metadata entries"):
        check_metadata_size({f"k{i}": "v" for i in range(MAX_ENTRIES + 1)})
    with pytest.raises(MetadataError, match="metadata key"):
        check_metadata_size({"k" * 200: "v"})


def test_messages_are_bounded() -> None:
    assert quoted("short") == "short"
    long = quoted("q" * 10_000)
    assert len(long) < 130
    assert long.endswith("(10000 characters)")
    assert len(capped("m" * 10**6)) == MAX_MESSAGE_CHARS


async def test_allowed_answers_only_from_what_check_decided_and_still_holds() -> None:
    """The warm path asks ``allowed`` without awaiting: True only for destinations
    ``check`` allowed, a name only until its resolution expires; never a refusal."""
    now = [0.0]
    resolver = Resolver({"redis.data": ["10.0.0.5"], "meta.data": ["169.254.169.254"]})
    policy = BrokerPolicy((), resolve=resolver, cache_seconds=30, clock=lambda: now[0])
    name, address, hidden = redis("redis.data"), redis("10.0.0.6"), redis("meta.data")
    assert not policy.allowed([name])
    assert not policy.allowed([address])
    await policy.check([name, address])
    assert policy.allowed([name, address])
    assert policy.allowed([])
    assert resolver.lookups == ["redis.data"]  # allowed() resolves nothing
    with pytest.raises(PolicyError):
        await policy.check([hidden])
    assert not policy.allowed([hidden])
    assert not policy.allowed([name, hidden])
    now[0] = 30  # the name's resolution has expired; an address is allowed for good
    assert not policy.allowed([name])
    assert policy.allowed([address])
