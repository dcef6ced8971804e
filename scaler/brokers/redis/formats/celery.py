"""Celery, through kombu's Redis transport: one list per priority step, ``<queue>``
for step 0 and ``<queue><sep><step>`` for the others, under kombu's
``global_keyprefix``; kombu's own ``_size`` sums their LLEN."""

from __future__ import annotations

from scaler.brokers.redis.formats.base import Format, Plan, Settings, no_pause
from scaler.errors import MetadataError

#: kombu's PRIORITY_STEPS and its sep.
STEPS = (0, 3, 6, 9)
SEPARATOR = "\x06\x16"


def plan(s: Settings) -> Plan:
    prefix = FORMAT.prefix(s)
    steps = STEPS if s.priority_steps is None else s.priority_steps
    sep = SEPARATOR if s.priority_separator is None else s.priority_separator
    q = s.queue_name
    return Plan(tuple(f"{prefix}{q}{sep}{n}" if n else f"{prefix}{q}" for n in steps))


def rules(s: Settings) -> None:
    steps = s.priority_steps
    if steps is not None and (not steps or list(steps) != sorted(set(steps)) or steps[0] < 0):
        raise MetadataError(
            f'parameter "prioritySteps" value "{",".join(map(str, steps))}" must be '
            "ascending, distinct, non-negative integers (kombu's priority_steps, "
            'e.g. "0,3,6,9")'
        )


FORMAT = Format(
    "celery",
    "celery",
    plan,
    frozenset({"ready"}),
    {
        "scheduled": "Celery keeps ETA and countdown tasks in the worker that received them "
        "(unacknowledged), not in a Redis structure of the queue",
        "active": "kombu keeps delivered, unacknowledged messages in one "
        '"unacked" hash shared by every queue, not per queue',
        "paused": no_pause("Celery"),
    },
    default_prefix="",
    priorities=True,
    rules=rules,
    no_age="Celery's messages carry no enqueue time (kombu writes none, and an ETA task "
    "waits in a worker, not in Redis); measure the length, or scale on a queue that keeps "
    "times (docs/age.md)",
)
