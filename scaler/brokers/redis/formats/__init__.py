"""Queue formats: where each task framework keeps a queue's work in Redis, and which
of its states a count can read (``queueFormat`` on the ``redis`` scalerTypes).

One module per framework (its :class:`~.base.Format`: keys, states, settings rules)
and one ``<name>.lua`` beside it: the read-only script that counts the queue in one
round trip. The script returns every wanted state; the trigger's value is the sum of
the states in ``include``. Adding a framework is a module, its script, and a line in
:data:`FORMATS`.

Each rule was read from the framework's own code (kombu 5.7, RQ 3.0, arq 0.28,
Dramatiq 2.2, Huey 3.5, BullMQ 6.7, Sidekiq 6.4); tests/integration/
test_frameworks.py checks every count against the framework's own count API.
docs/frameworks.md is the user's table.
"""

from __future__ import annotations

from scaler.brokers.redis.formats import arq, bullmq, celery, dramatiq, huey, rq, sidekiq
from scaler.brokers.redis.formats.base import (
    SCAN_LIMIT,
    STATES,
    Format,
    Plan,
    Settings,
    State,
    check,
    slot,
)

FORMATS: dict[str, Format] = {
    m.FORMAT.name: m.FORMAT for m in (celery, rq, arq, dramatiq, huey, bullmq, sidekiq)
}

#: queueFormat's values: KEDA's key count, then the frameworks.
QUEUE_FORMATS: tuple[str, ...] = ("list", *FORMATS)

__all__ = [
    "FORMATS", "QUEUE_FORMATS", "SCAN_LIMIT", "STATES", "Format", "Plan", "Settings",
    "State", "check", "slot",
]  # fmt: skip
