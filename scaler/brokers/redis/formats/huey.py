"""Huey's RedisStorage: ``huey.redis.<name>`` (a list; a sorted set under
PriorityRedisHuey) and ``huey.schedule.<name>`` (a sorted set by Unix time); the
name keeps only letters, digits and ``_``, as Huey's clean_name does."""

from __future__ import annotations

import re

from scaler.brokers.redis.formats.base import Format, Plan, Settings, no_pause
from scaler.errors import MetadataError


def clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "", name)


def plan(s: Settings) -> Plan:
    name = clean(s.queue_name)
    return Plan((f"huey.redis.{name}", f"huey.schedule.{name}"))


def rules(s: Settings) -> None:
    if not clean(s.queue_name):
        raise MetadataError(
            f'parameter "queueName" value "{s.queue_name}" has no letter, digit or "_": '
            "Huey keeps only those of its name in its keys"
        )


FORMAT = Format(
    "huey",
    "huey",
    plan,
    frozenset({"ready", "scheduled"}),
    {"active": "Huey does not record a running task in Redis", "paused": no_pause("Huey")},
    rules=rules,
    no_age="Huey's queued messages carry no enqueue time (a pickled task id, name, ETA "
    "and arguments); measure the length, or scale on a queue that keeps times (docs/age.md)",
)
