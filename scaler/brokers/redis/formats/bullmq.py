"""BullMQ: ``<prefix>:<queue>:`` + ``wait``, ``paused`` (a list before v5),
``prioritized``, ``delayed``, ``active`` and ``meta``; the prefix defaults to ``bull``.
On Redis Cluster the prefix needs a hash tag (``{bull}``), as BullMQ's guide says."""

from __future__ import annotations

from scaler.brokers.redis.formats.base import Format, Plan, Settings

PARTS = ("wait", "paused", "prioritized", "delayed", "active", "meta")


def plan(s: Settings) -> Plan:
    base = f"{FORMAT.prefix(s)}:{s.queue_name}"
    return Plan(tuple(f"{base}:{part}" for part in PARTS))


FORMAT = Format(
    "bullmq",
    "(your Queue's name)",
    plan,
    frozenset({"ready", "scheduled", "active", "paused"}),
    default_prefix="bull",
)
