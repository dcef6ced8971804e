"""Every way of writing a refused address is refused before any dial.

The broker policy never dials link-local (169.254.0.0/16, fe80::/10, where cloud
instance metadata lives) or AWS's fd00:ec2::254 unless --allow-brokers names them.
Hypothesis writes addresses of those networks in every textual form the ``ipaddress``
module, URL parsers and the C resolver accept (dotted, hex, octal, one to four
parts, IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo, zone ids, leading zeros,
upper case) and puts each in every key that says where a trigger connects, for every
broker. The scaler must answer PERMISSION_DENIED, and the test process must have
dialed nothing: ``tests/loopback.py`` refuses and records any non-loopback connect,
so "0 dials" is counted, not assumed.

The server's resolver is the C resolver in numeric mode (AI_NUMERICHOST): it reads
every numeric form as a dial would, and never asks DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.guard import IP, BrokerPolicy
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests import loopback
from tests.integration.test_fuzz import EXAMPLES, LIMIT, Background, serving


async def numeric_only(host: str, port: int) -> list[IP]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


V4_REFUSED = ipaddress.IPv4Network("169.254.0.0/16")
V6_REFUSED = (ipaddress.IPv6Network("fe80::/10"), ipaddress.IPv6Network("fd00:ec2::254/128"))


def v4_texts(ip: ipaddress.IPv4Address, style: int, parts: int) -> str:
    """One of inet_aton's spellings: 1 to 4 parts, each decimal, hex or octal."""
    a, b, c, d = ip.packed
    groups = {4: [a, b, c, d], 3: [a, b, (c << 8) | d], 2: [a, (b << 16) | (c << 8) | d],
              1: [int(ip)]}[parts]  # fmt: skip
    fmt = {0: str, 1: hex, 2: lambda n: "0" + oct(n)[2:] if n else "0", 3: lambda n: hex(n).upper()}
    return ".".join(fmt[style](g) for g in groups).replace("0X", "0x")


def v6_spellings(ip: ipaddress.IPv6Address, zone: str) -> list[str]:
    """Compressed, exploded, upper case, without leading-zero trimming, with a zone."""
    texts = [ip.compressed, ip.exploded, ip.compressed.upper(), ":".join(
        f"{int(group, 16):x}" for group in ip.exploded.split(":"))]  # fmt: skip
    if ip.ipv4_mapped is not None:
        texts.append(f"::ffff:{ip.ipv4_mapped}")
        texts.append(f"0:0:0:0:0:ffff:{ip.ipv4_mapped}")
    return [t + zone for t in texts] if zone else texts


@st.composite
def refused_hosts(draw: Any) -> str:
    """A host (as it would stand in a URL or host key, without brackets) that is, or
    carries, an address of a refused network."""
    kind = draw(st.sampled_from(
        ["v4", "mapped", "compatible", "nat64", "nat64-local", "6to4", "teredo", "v6"]))  # fmt: skip
    v4 = ipaddress.IPv4Address(
        int(V4_REFUSED.network_address) + draw(st.integers(0, V4_REFUSED.num_addresses - 1))
    )
    if kind == "v4":
        return v4_texts(v4, draw(st.integers(0, 3)), draw(st.sampled_from([1, 2, 3, 4])))
    low = int(v4)
    if kind == "mapped":
        ip = ipaddress.IPv6Address((0xFFFF << 32) | low)
    elif kind == "compatible":
        ip = ipaddress.IPv6Address(low)
    elif kind == "nat64":
        ip = ipaddress.IPv6Address((0x64FF9B << 96) | low)
    elif kind == "nat64-local":
        ip = ipaddress.IPv6Address(
            (0x0064FF9B0001 << 80) | draw(st.integers(0, 2**48 - 1)) << 32 | low
        )
    elif kind == "6to4":
        ip = ipaddress.IPv6Address((0x2002 << 112) | (low << 80) | draw(st.integers(0, 2**80 - 1)))
    elif kind == "teredo":  # 2001:0::/32, server, flags, port and the client inverted
        server = draw(st.integers(0, 2**32 - 1))
        flags, port = draw(st.integers(0, 2**16 - 1)), draw(st.integers(0, 2**16 - 1))
        ip = ipaddress.IPv6Address(
            (0x20010000 << 96) | (server << 64) | (flags << 48) | ((~port & 0xFFFF) << 32)
            | (~low & 0xFFFFFFFF)
        )  # fmt: skip
    else:
        net = draw(st.sampled_from(V6_REFUSED))
        ip = ipaddress.IPv6Address(
            int(net.network_address) + draw(st.integers(0, net.num_addresses - 1))
        )
    zone = draw(st.sampled_from(["", "", "%lo", "%1"]))
    return draw(st.sampled_from(v6_spellings(ip, zone)))


def bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


#: Every key that says where a trigger connects, per scalerType.
def placements(host: str, n: int) -> list[tuple[str, dict[str, str]]]:
    hp = bracketed(host)
    return [
        ("redis address", {"scalerType": "redis", "listName": "q", "address": f"{hp}:6379",
                           "password": "pw"}),
        ("redis host+port", {"scalerType": "redis", "listName": "q", "host": host,
                             "port": "6379", "password": "pw"}),
        ("redis hosts+ports", {"scalerType": "redis-cluster", "listName": "q", "hosts": host,
                               "ports": "6379", "password": "pw"}),
        ("redis-cluster addresses", {"scalerType": "redis-cluster", "listName": "q",
                                     "addresses": f"{hp}:6379", "password": "pw"}),
        ("redis-sentinel addresses", {"scalerType": "redis-sentinel", "listName": "q",
                                      "addresses": f"{hp}:26379", "sentinelMaster": "m",
                                      "password": "pw"}),
        ("redis-streams address", {"scalerType": "redis-streams", "stream": "s",
                                   "address": f"{hp}:6379", "password": "pw"}),
        ("rabbitmq amqp host", {"scalerType": "rabbitmq", "queueName": "q",
                                "host": f"amqp://u:pw@{hp}:5672/"}),
        ("rabbitmq http host", {"scalerType": "rabbitmq", "queueName": "q",
                                "host": f"http://u:pw@{hp}:15672/"}),
        # An endpoint the operator chose (a credential set): still never a refused network.
        ("sqs awsEndpoint (credential set)", {"scalerType": "aws-sqs-queue", "queueURL": "q",
                                              "awsRegion": "us-east-1",
                                              "credentialsRef": f"aws-{n}"}),
    ]  # fmt: skip


@pytest.fixture(scope="module", params=["no --allow-brokers", "--allow-brokers *"])
def scaler(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[pb_grpc.ExternalScalerStub, Path]]:
    sets = tmp_path_factory.mktemp("sets")
    patterns = () if request.param.startswith("no") else ("*",)
    background = Background(BrokerPolicy(patterns, resolve=numeric_only), credentials_dir=str(sets))
    with serving(background) as running:
        yield running, sets


TRIED: Counter[str] = Counter()
COUNTER = itertools.count()


@pytest.mark.timeout(LIMIT)
@settings(
    max_examples=max(EXAMPLES // 5, 100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
@given(host=refused_hosts())
def test_every_form_of_a_refused_network_is_refused_before_any_dial(
    scaler: tuple[pb_grpc.ExternalScalerStub, Path], host: str
) -> None:
    stub, sets = scaler
    n = next(COUNTER)
    endpoint = sets / f"aws-{n}"
    endpoint.mkdir()
    (endpoint / "namespaces").write_text("*")
    (endpoint / "awsEndpoint").write_text(f"http://{bracketed(host)}:80")
    (endpoint / "awsAccessKeyID").write_text("AKIDEXAMPLE")
    (endpoint / "awsSecretAccessKey").write_text("secret")
    for where, metadata in placements(host, n):
        request = pb.GetMetricsRequest(
            scaledObjectRef=pb.ScaledObjectRef(name="j", namespace="team", scalerMetadata=metadata)
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.GetMetrics(request, timeout=30)
        TRIED[where] += 1
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, (where, host, err.value)
        assert "link-local or cloud metadata address" in (err.value.details() or ""), (where, host)
    assert loopback.take() == []  # 0 dials, counted by the audit hook


def test_the_property_test_reports_what_it_tried() -> None:
    """Runs after the property test (file order): the forms it tried, for the CI log."""
    total = sum(TRIED.values())
    print(f"\nrefused networks: {total} refused calls, none dialed: {dict(TRIED)}")
    assert total >= 2 * 100 * len(placements("169.254.169.254", 0))
