"""Table-driven metadata rules for the Redis scalerTypes (DESIGN §4), KEDA style:
each row is metadata and either the expected trigger or the error text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from scaler.brokers.memory.client import MemoryAdapter
from scaler.brokers.redis.client import RedisAdapter
from scaler.brokers.redis.metadata import RedisListQuery, RedisStreamQuery
from scaler.errors import MetadataError
from scaler.metadata import Secret, fingerprint
from scaler.registry import KINDS, Triggers

TRIGGERS = Triggers({"redis": RedisAdapter(timeout=1), "memory": MemoryAdapter()})
ADDR = {"address": "redis:6379"}


@dataclass
class Ok:
    metadata: dict[str, str]
    metric: str
    target: float
    activation: float = 0.0
    check: dict[str, Any] | None = None  # query attribute -> expected


@dataclass
class Bad:
    metadata: dict[str, str]
    needles: tuple[str, ...]


def lst(**kv: str) -> dict[str, str]:
    return {"scalerType": "redis", "listName": "jobs", **ADDR, **kv}


def stm(**kv: str) -> dict[str, str]:
    return {"scalerType": "redis-streams", "stream": "events", **ADDR, **kv}


GOOD = [
    Ok(lst(), "redis-jobs", 5, 0, {"key": "jobs"}),  # listLength defaults to 5
    Ok(lst(listLength="12", activationListLength="3"), "redis-jobs", 12, 3),
    Ok(lst(listName="ns/a.b:c%d(e)"), "redis-ns-a-b-c-d-e-", 5),  # KEDA's name normalising
    Ok(lst(databaseIndex="4"), "redis-jobs", 5, check={"conn.database": 4}),
    Ok(lst(enableTLS="true", unsafeSsl="1"), "redis-jobs", 5,
       check={"conn.tls": True, "conn.unsafe_ssl": True}),
    Ok(lst(enableTLS="False"), "redis-jobs", 5, check={"conn.tls": False}),
    Ok({"scalerType": "redis", "listName": "q", "host": "h", "port": "7000"}, "redis-q", 5,
       check={"conn.addresses": (("h", 7000),)}),
    Ok({"scalerType": "redis", "listName": "q", "hostFromEnv": "h", "portFromEnv": "7000"},
       "redis-q", 5, check={"conn.addresses": (("h", 7000),)}),
    Ok({"scalerType": "redis", "listName": "q", "addressFromEnv": "e:1"}, "redis-q", 5,
       check={"conn.addresses": (("e", 1),)}),
    Ok({"scalerType": "redis", "listName": "q", "address": "[::1]:6379"}, "redis-q", 5,
       check={"conn.addresses": (("::1", 6379),)}),
    Ok(lst(address="a:1", addressFromEnv="b:2"), "redis-jobs", 5,  # the plain key wins
       check={"conn.addresses": (("a", 1),)}),
    Ok(lst(username="u", passwordFromEnv="pw"), "redis-jobs", 5,
       check={"conn.username": "u", "conn.password": Secret("pw")}),
    Ok(lst(usernameFromEnv="u2", password="pw"), "redis-jobs", 5,
       check={"conn.username": "u2", "conn.password": Secret("pw")}),
    Ok(lst(listLength=""), "redis-jobs", 5),  # empty = absent, as KEDA drops empty env values
    Ok({"scalerType": "redis-cluster", "listName": "q", "addresses": "a:1, b:2,c:3"},
       "redis-q", 5, check={"conn.addresses": (("a", 1), ("b", 2), ("c", 3)),
                            "conn.mode": "cluster"}),
    Ok({"scalerType": "redis-cluster", "listName": "q", "hosts": "a,b", "ports": "1,2"},
       "redis-q", 5, check={"conn.addresses": (("a", 1), ("b", 2))}),
    Ok({"scalerType": "redis-cluster", "listName": "q", "address": "a:1", "hosts": "b",
        "ports": "2"}, "redis-q", 5,  # address and host/port are combined, as in KEDA
       check={"conn.addresses": (("a", 1), ("b", 2))}),
    Ok({"scalerType": "redis-sentinel", "listName": "q", "addresses": "s1:26379,s2:26379",
        "sentinelMaster": "mymaster", "sentinelPasswordFromEnv": "sp", "databaseIndex": "2"},
       "redis-q", 5, check={"conn.mode": "sentinel", "conn.sentinel_master": "mymaster",
                            "conn.sentinel_password": Secret("sp"), "conn.database": 2}),
    Ok(lst(activationListLength="-1"), "redis-jobs", 5, -1),  # KEDA accepts any integer
    # streams: the three modes
    Ok(stm(), "redis-streams-events", 5, 0, {"mode": "length", "group": ""}),
    Ok(stm(streamLength="20", activationLagCount="4"), "redis-streams-events", 20, 4,
       {"mode": "length"}),
    Ok(stm(consumerGroup="g"), "redis-streams-events", 5, 0, {"mode": "pending", "group": "g"}),
    Ok(stm(consumerGroup="g", pendingEntriesCount="7", activationLagCount="2"),
       "redis-streams-events", 7, 2, {"mode": "pending"}),
    Ok(stm(consumerGroup="g", lagCount="0"), "redis-streams-events", 5, 0, {"mode": "pending"}),
    Ok(stm(consumerGroup="g", lagCount="9"), "redis-streams-events", 9, 0, {"mode": "lag"}),
    Ok(stm(lagCount="9"), "redis-streams-events", 5, 0, {"mode": "length"}),  # no group: XLEN
    Ok({"scalerType": "redis-cluster-streams", "stream": "s", "addresses": "a:1,b:2"},
       "redis-streams-s", 5, check={"conn.mode": "cluster"}),
    Ok({"scalerType": "redis-sentinel-streams", "stream": "s", "addresses": "a:1",
        "sentinelMaster": "m"}, "redis-streams-s", 5, check={"conn.mode": "sentinel"}),
]  # fmt: skip

BAD = [
    Bad({"scalerType": "redis", **ADDR}, ('"listName" is required', '"redis"')),
    Bad({"scalerType": "redis", "listName": "q"}, ("no Redis address", '"address"', '"host"')),
    Bad(lst(listLength="five"), ('"listLength"', '"five"', "whole number")),
    Bad(lst(listLength="2.5"), ('"listLength"', '"2.5"', "whole number")),
    Bad(lst(listLength="0"), ('"listLength"', '"0"', "greater than 0")),
    Bad(lst(listLength="-3"), ('"listLength"', '"-3"', "greater than 0")),
    Bad(lst(activationListLength="x"), ('"activationListLength"', '"x"', "whole number")),
    Bad(lst(databaseIndex="-1"), ('"databaseIndex"', '"-1"', "0 or greater")),
    Bad(lst(enableTLS="yes"), ('"enableTLS"', '"yes"', '"true" or "false"')),
    Bad(lst(unsafeSsl="maybe"), ('"unsafeSsl"', '"maybe"', '"true" or "false"')),
    Bad(lst(address="redis"), ('"address"', '"redis"', "host:port")),
    Bad(lst(address="redis:99999"), ('"address"', '"redis:99999"', "1 to 65535")),
    Bad({"scalerType": "redis", "listName": "q", "host": "h"}, ('"host"', '"port"', "one port")),
    Bad({"scalerType": "redis-cluster", "listName": "q", "hosts": "a,b", "ports": "1"},
        ("2 host(s)", "1")),
    Bad({"scalerType": "redis-cluster", "listName": "q", "addresses": "a:1",
         "databaseIndex": "1"}, ('"databaseIndex"', '"1"', "single database")),
    Bad({"scalerType": "redis-sentinel", "listName": "q", "addresses": "a:1"},
        ('"sentinelMaster" is required', '"redis-sentinel"')),
    Bad({"scalerType": "redis-sentinel-streams", "stream": "q", "addresses": "a:1"},
        ('"sentinelMaster" is required',)),
    Bad({"scalerType": "redis-streams", **ADDR}, ('"stream" is required',)),
    Bad(stm(streamLength="0"), ('"streamLength"', '"0"', "greater than 0")),
    Bad(stm(pendingEntriesCount="-1"), ('"pendingEntriesCount"', '"-1"', "greater than 0")),
    Bad(stm(lagCount="-2"), ('"lagCount"', '"-2"', "0 or greater")),
    Bad(stm(activationLagCount="1.5"), ('"activationLagCount"', '"1.5"', "whole number")),
    Bad({"scalerType": "Redis", "listName": "q"}, ('"Redis"', "not supported", "redis-streams")),
    Bad({"scalerType": "", "listName": "q"}, ('"scalerType" is required', "redis")),
]  # fmt: skip


def _attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("row", GOOD, ids=[str(i) for i in range(len(GOOD))])
def test_good_metadata(row: Ok) -> None:
    trigger = TRIGGERS.parse(row.metadata)
    assert trigger.scaler_type == row.metadata["scalerType"]
    assert trigger.metric_name == row.metric
    assert trigger.target == row.target
    assert trigger.activation == row.activation
    assert isinstance(trigger.query, RedisListQuery | RedisStreamQuery)
    for dotted, expected in (row.check or {}).items():
        assert _attr(trigger.query, dotted) == expected, dotted


@pytest.mark.parametrize("row", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_metadata(row: Bad) -> None:
    with pytest.raises(MetadataError) as err:
        TRIGGERS.parse(row.metadata)
    for needle in row.needles:
        assert needle in err.value.message, (needle, err.value.message)


def test_secrets_never_appear_in_errors_reprs_or_cache_keys() -> None:
    trigger = TRIGGERS.parse(lst(password="hunter2-secret", sentinelPassword="sentinel-secret"))
    for text in (repr(trigger), str(fingerprint(trigger.query))):
        assert "hunter2-secret" not in text
        assert "sentinel-secret" not in text
    # Same credentials, same cache identity; different credentials, a different one.
    again = TRIGGERS.parse(lst(password="hunter2-secret", sentinelPassword="sentinel-secret"))
    other = TRIGGERS.parse(lst(password="other", sentinelPassword="sentinel-secret"))
    assert fingerprint(trigger.query) == fingerprint(again.query)
    assert fingerprint(trigger.query) != fingerprint(other.query)


def test_unknown_keys_are_ignored_like_keda() -> None:
    # KEDA forwards its own keys (scalerAddress, its TLS flags) with the trigger's.
    trigger = TRIGGERS.parse(lst(scalerAddress="scaler:6000", somethingElse="x"))
    assert trigger.metric_name == "redis-jobs"


def test_every_scaler_type_is_registered_with_its_metadata_class() -> None:
    for scaler_type, kind in KINDS.items():
        assert scaler_type in kind.metadata.scaler_types


def test_parsed_triggers_are_reused_and_errors_are_not() -> None:
    triggers = Triggers({"redis": RedisAdapter(timeout=1)}, cache_size=2)
    first = triggers.parse(lst())
    assert triggers.parse(dict(lst())) is first  # same metadata, same Trigger object
    with pytest.raises(MetadataError):
        triggers.parse(lst(listLength="x"))
    with pytest.raises(MetadataError):
        triggers.parse(lst(listLength="x"))  # refused every time, never cached
    triggers.parse(lst(listName="a"))
    triggers.parse(lst(listName="b"))
    assert triggers.parse(lst()) is not first  # evicted: at most cache_size kept
