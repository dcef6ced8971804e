"""arq: the queue (its name is the key, default ``arq:queue``) is a sorted set of job
ids scored by due time in ms; a running job keeps its place and has the key
``arq:in-progress:<id>``. Not on Redis Cluster: the count reads those keys by name."""

from __future__ import annotations

from scaler.brokers.redis.formats.base import Format, Plan, Settings, no_pause

#: arq's running jobs are looked for among this many of the lowest-scored due jobs.
WINDOW = 1_000
IN_PROGRESS = "arq:in-progress:"  # arq.constants.in_progress_key_prefix


def plan(s: Settings) -> Plan:
    return Plan((s.queue_name,), (IN_PROGRESS, str(WINDOW)))


FORMAT = Format(
    "arq",
    "arq:queue",
    plan,
    frozenset({"ready", "scheduled", "active"}),
    {"paused": no_pause("arq")},
    cluster=False,
)
