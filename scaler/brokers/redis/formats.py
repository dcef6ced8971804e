"""Queue formats: where each task framework keeps a queue's work in Redis, and which
of its states a count can read (``queueFormat`` on the ``redis`` scalerTypes).

A format turns the framework settings of a trigger (``queueName``, ``keyPrefix``,
Celery's priority steps and separator) into the keys one read-only Lua script
counts in one round trip (see ``lua/``). The script returns every wanted state;
the trigger's value is the sum of the states in ``include``.

Each rule here was read from the framework's own code (kombu 5.7, RQ 3.0, arq
0.28, Dramatiq 2.2, Huey 3.5, BullMQ 6.7, Sidekiq 6.4); the tests check it against
those libraries' own count APIs. docs/frameworks.md is the user's table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from scaler.errors import MetadataError

State = Literal["ready", "scheduled", "active", "paused"]
#: Every state, in the order a script returns them.
STATES: tuple[State, ...] = ("ready", "scheduled", "active", "paused")

#: The most items a count decodes (Dramatiq's delayed messages, Sidekiq's shared
#: schedule, retry and work sets): past it the read is refused, never guessed.
SCAN_LIMIT = 10_000
#: arq's running jobs are looked for among this many of the lowest-scored due jobs.
ARQ_WINDOW = 1_000

_NO_PAUSE = "{name} has no paused state for a queue"


@dataclass(frozen=True)
class Settings:
    """A trigger's framework settings, as parsed (before defaults)."""

    queue_name: str
    key_prefix: str | None = None
    priority_steps: tuple[int, ...] | None = None
    priority_separator: str | None = None


@dataclass(frozen=True)
class Format:
    """One framework's storage: what a count reads and which states it can tell."""

    name: str
    #: The framework's default queue name, for docs and hints.
    default_queue: str
    #: Which states a count can give; the others map to the reason it cannot.
    offered: frozenset[State]
    refused: dict[State, str] = field(default_factory=dict)
    #: keyPrefix's default, or None when the framework has no such setting.
    default_prefix: str | None = None
    #: True when the script reads only its KEYS (so one hash slot can hold them all).
    cluster: bool = True
    #: Key types the framework uses, for docs.
    storage: str = ""

    def script(self) -> str:
        """The Lua source of this format's count (prelude, body, epilogue)."""
        return _script(self.name)


def _clean_huey(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "", name)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "celery",
            "celery",
            frozenset({"ready"}),
            {
                "scheduled": "Celery keeps ETA and countdown tasks in the worker that "
                "received them (unacknowledged), not in a Redis structure of the queue",
                "active": "kombu keeps delivered, unacknowledged messages in one "
                '"unacked" hash shared by every queue, not per queue',
                "paused": _NO_PAUSE.format(name="Celery"),
            },
            default_prefix="",
            storage="one list per priority step",
        ),
        Format(
            "rq",
            "default",
            frozenset({"ready", "scheduled", "active"}),
            {"paused": _NO_PAUSE.format(name="RQ")},
            default_prefix="rq",
            storage="a list, and scheduled and started registries (sorted sets)",
        ),
        Format(
            "arq",
            "arq:queue",
            frozenset({"ready", "scheduled", "active"}),
            {"paused": _NO_PAUSE.format(name="arq")},
            cluster=False,
            storage="a sorted set scored by due time, and one in-progress key per job",
        ),
        Format(
            "dramatiq",
            "default",
            frozenset({"ready", "scheduled", "active"}),
            {"paused": _NO_PAUSE.format(name="Dramatiq")},
            default_prefix="dramatiq",
            storage="a list and a hash of messages, for the queue and its delay queue",
        ),
        Format(
            "huey",
            "huey",
            frozenset({"ready", "scheduled"}),
            {
                "active": "Huey does not record a running task in Redis",
                "paused": _NO_PAUSE.format(name="Huey"),
            },
            storage="a list (a sorted set for PriorityRedisHuey) and a schedule",
        ),
        Format(
            "bullmq",
            "(your Queue's name)",
            frozenset({"ready", "scheduled", "active", "paused"}),
            default_prefix="bull",
            storage="wait, active and paused lists, prioritized and delayed sorted sets, meta",
        ),
        Format(
            "sidekiq",
            "default",
            frozenset({"ready", "scheduled", "active"}),
            {"paused": "pausing a queue is Sidekiq Pro's, which keeps it elsewhere"},
            cluster=False,
            storage='a list, and the "schedule", "retry" and work sets shared by every queue',
        ),
    )
}

#: queueFormat's values: KEDA's key count, then the frameworks.
QUEUE_FORMATS: tuple[str, ...] = ("list", *FORMATS)


@dataclass(frozen=True)
class Plan:
    """What one count reads: the script's KEYS and its ARGV after the wanted states."""

    keys: tuple[str, ...]
    args: tuple[str, ...] = ()


def plan(fmt: Format, s: Settings) -> Plan:
    """The keys and arguments of ``fmt``'s count for these settings."""
    q = s.queue_name
    prefix = fmt.default_prefix if s.key_prefix is None else s.key_prefix
    if fmt.name == "celery":
        steps = s.priority_steps if s.priority_steps is not None else (0, 3, 6, 9)
        sep = "\x06\x16" if s.priority_separator is None else s.priority_separator
        # kombu: step 0 is the queue's own name, any other step is "<queue><sep><step>"
        return Plan(tuple(f"{prefix}{q}{sep}{n}" if n else f"{prefix}{q}" for n in steps))
    if fmt.name == "rq":
        return Plan((f"{prefix}:queue:{q}", f"{prefix}:scheduled:{q}", f"{prefix}:wip:{q}"))
    if fmt.name == "arq":
        return Plan((q,), ("arq:in-progress:", str(ARQ_WINDOW)))
    if fmt.name == "dramatiq":
        base = f"{prefix}:{q}"
        return Plan((base, f"{base}.msgs", f"{base}.DQ", f"{base}.DQ.msgs"), (str(SCAN_LIMIT),))
    if fmt.name == "huey":
        name = _clean_huey(q)
        return Plan((f"huey.redis.{name}", f"huey.schedule.{name}"))
    if fmt.name == "bullmq":
        base = f"{prefix}:{q}"
        parts = ("wait", "paused", "prioritized", "delayed", "active", "meta")
        return Plan(tuple(f"{base}:{p}" for p in parts))
    if fmt.name == "sidekiq":
        return Plan((f"queue:{q}", "schedule", "retry", "processes"), (q, str(SCAN_LIMIT)))
    raise AssertionError(f"no plan for format {fmt.name}")


def check(fmt: Format, s: Settings, include: tuple[str, ...], *, cluster: bool) -> None:
    """The settings' own rules (MetadataError naming the key and the reason)."""
    where = f'queueFormat "{fmt.name}"'
    if s.key_prefix is not None and fmt.default_prefix is None:
        raise MetadataError(
            f'parameter "keyPrefix" does not apply to {where}: {fmt.name} has no key '
            "prefix setting (remove it)"
        )
    if fmt.name != "celery":
        for given, name in ((s.priority_steps, "prioritySteps"),
                            (s.priority_separator, "prioritySeparator")):  # fmt: skip
            if given is not None:
                raise MetadataError(
                    f'parameter "{name}" applies to queueFormat "celery" only, not {where}'
                )
    if s.priority_steps is not None:
        steps = s.priority_steps
        if not steps or list(steps) != sorted(set(steps)) or steps[0] < 0:
            raise MetadataError(
                f'parameter "prioritySteps" value "{",".join(map(str, steps))}" must be '
                "ascending, distinct, non-negative integers (kombu's priority_steps, "
                'e.g. "0,3,6,9")'
            )
    if fmt.name == "huey" and not _clean_huey(s.queue_name):
        raise MetadataError(
            f'parameter "queueName" value "{s.queue_name}" has no letter, digit or "_": '
            "Huey keeps only those of its name in its keys"
        )
    if (
        fmt.name == "rq"
        and s.key_prefix is not None
        and not re.fullmatch(r"[A-Za-z0-9_.:{}-]+", s.key_prefix)
    ):
        raise MetadataError(
            f'parameter "keyPrefix" value "{s.key_prefix}" must be letters, digits and '
            "_ . : - { } (RQ_KEY_PREFIX's rule)"
        )
    for state in include:
        if state not in STATES:
            raise MetadataError(
                f'parameter "include" value "{state}" is not a state: use '
                f"{', '.join(STATES)} (comma-separated)"
            )
        if state not in fmt.offered:
            raise MetadataError(
                f'parameter "include" value "{state}" cannot be counted for {where}: '
                f"{fmt.refused[state]}"
            )
    if cluster:
        if not fmt.cluster:
            raise MetadataError(
                f'{where} is not supported on "redis-cluster": {fmt.name} does not run on '
                "Redis Cluster (its count reads keys named inside its data)"
            )
        keys = plan(fmt, s).keys
        if len({slot(k) for k in keys}) > 1:
            raise MetadataError(
                f'{where} on "redis-cluster" needs every key of the queue in one hash slot '
                f"({', '.join(repr(k) for k in keys)} are not): put a hash tag in the "
                'name, as the framework\'s cluster guide does (e.g. keyPrefix "{bull}")'
            )


def slot(key: str) -> int:
    """Redis Cluster's hash slot of a key (CRC16/XMODEM of its hash tag or whole name)."""
    data = key.encode()
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


_SOURCES: dict[str, str] = {}


def _script(name: str) -> str:
    if name not in _SOURCES:
        lua = resources.files("scaler.brokers.redis") / "lua"
        _SOURCES[name] = "\n".join(
            (lua / f"{part}.lua").read_text(encoding="utf-8")
            for part in ("prelude", name, "epilogue")
        )
    return _SOURCES[name]
