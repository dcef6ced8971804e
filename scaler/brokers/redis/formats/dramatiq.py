"""Dramatiq's Redis broker: ``<ns>:<q>`` (a list of message ids) and ``<ns>:<q>.msgs``
(a hash of the messages, fetched ones included), and the same with ``.DQ`` for its
delay queue; ns is the broker's namespace (default ``dramatiq``)."""

from __future__ import annotations

from scaler.brokers.redis.formats.base import SCAN_LIMIT, Format, Plan, Settings, no_pause


def plan(s: Settings) -> Plan:
    base = f"{FORMAT.prefix(s)}:{s.queue_name}"
    return Plan((base, f"{base}.msgs", f"{base}.DQ", f"{base}.DQ.msgs"), (str(SCAN_LIMIT),))


FORMAT = Format(
    "dramatiq",
    "default",
    plan,
    frozenset({"ready", "scheduled", "active"}),
    {"paused": no_pause("Dramatiq")},
    default_prefix="dramatiq",
)
