"""RQ: ``<prefix>:queue:<q>`` (a list of job ids), its ScheduledJobRegistry
``<prefix>:scheduled:<q>`` and StartedJobRegistry ``<prefix>:wip:<q>`` (sorted sets);
the prefix is RQ_KEY_PREFIX (default ``rq``)."""

from __future__ import annotations

import re

from scaler.brokers.redis.formats.base import Format, Plan, Settings, no_pause
from scaler.errors import MetadataError


def plan(s: Settings) -> Plan:
    p, q = FORMAT.prefix(s), s.queue_name
    return Plan((f"{p}:queue:{q}", f"{p}:scheduled:{q}", f"{p}:wip:{q}"), (f"{p}:job:",))


def rules(s: Settings) -> None:
    if s.key_prefix is not None and not re.fullmatch(r"[A-Za-z0-9_.:{}-]+", s.key_prefix):
        raise MetadataError(
            f'parameter "keyPrefix" value "{s.key_prefix}" must be letters, digits and '
            "_ . : - { } (RQ_KEY_PREFIX's rule)"
        )


FORMAT = Format(
    "rq",
    "default",
    plan,
    frozenset({"ready", "scheduled", "active"}),
    {"paused": no_pause("RQ")},
    default_prefix="rq",
    rules=rules,
    age_on_cluster=False,
)
