"""Sidekiq: ``queue:<q>`` (a list), and ``schedule``, ``retry`` (sorted sets of JSON
jobs) and ``processes`` with each process's work hash, which every queue shares. Not
on Redis Cluster (Sidekiq does not run there)."""

from __future__ import annotations

from scaler.brokers.redis.formats.base import SCAN_LIMIT, Format, Plan, Settings


def plan(s: Settings) -> Plan:
    q = s.queue_name
    return Plan((f"queue:{q}", "schedule", "retry", "processes"), (q, str(SCAN_LIMIT)))


FORMAT = Format(
    "sidekiq",
    "default",
    plan,
    frozenset({"ready", "scheduled", "active"}),
    {"paused": "pausing a queue is Sidekiq Pro's, which keeps it elsewhere"},
    cluster=False,
)
