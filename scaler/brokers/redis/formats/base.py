"""What every queue format shares: the states, the settings a trigger gives, the
plan of one count (its KEYS and ARGV), the rules common to all formats, the Redis
Cluster slot rule, and the Lua prelude and epilogue each format's script is wrapped in.

A format is one module beside this one (``celery.py``, ``rq.py``, ...) holding a
:class:`Format` and one ``<name>.lua`` count. ``formats/__init__.py`` lists them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
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


def no_pause(name: str) -> str:
    """The reason a framework without paused queues gives for ``include: paused``."""
    return f"{name} has no paused state for a queue"


@dataclass(frozen=True)
class Settings:
    """A trigger's framework settings, as parsed (before defaults)."""

    queue_name: str
    key_prefix: str | None = None
    priority_steps: tuple[int, ...] | None = None
    priority_separator: str | None = None


@dataclass(frozen=True)
class Plan:
    """What one count reads: the script's KEYS and its ARGV after the wanted states."""

    keys: tuple[str, ...]
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Format:
    """One framework's storage: what a count reads and which states it can tell."""

    name: str
    #: The framework's default queue name, for docs and hints.
    default_queue: str
    #: The keys and arguments of one count for a trigger's settings (defaults applied).
    plan: Callable[[Settings], Plan]
    #: Which states a count can give; the others map to the reason it cannot.
    offered: frozenset[State]
    refused: dict[State, str] = field(default_factory=dict)
    #: keyPrefix's default, or None when the framework has no such setting.
    default_prefix: str | None = None
    #: True when prioritySteps and prioritySeparator apply (Celery).
    priorities: bool = False
    #: True when the script reads only its KEYS (so one hash slot can hold them all).
    cluster: bool = True
    #: The framework's own rules for its settings: MetadataError naming the key.
    rules: Callable[[Settings], None] | None = None
    #: Why ``measure: age`` cannot be read (the framework keeps no enqueue time), or
    #: None when the script returns the oldest ready job's time (docs/age.md).
    no_age: str | None = None
    #: False when the age reads a key named inside the data (not on Redis Cluster).
    age_on_cluster: bool = True

    def age_problem(self, *, cluster: bool) -> str | None:
        """Why a trigger of this format cannot measure age, or None."""
        if self.no_age is not None:
            return self.no_age
        if cluster and not self.age_on_cluster:
            return (
                f"{self.name} keeps a job's enqueue time in a key named by the job's id, "
                'which Redis Cluster may hold on another node; use measure "length"'
            )
        return None

    def script(self) -> Script:
        """This format's count: its Lua source (prelude, body, epilogue) and SHA1."""
        return _script(self.name)

    def prefix(self, s: Settings) -> str:
        """The key prefix in effect: the trigger's, or the framework's default."""
        return (self.default_prefix or "") if s.key_prefix is None else s.key_prefix


def check(fmt: Format, s: Settings, include: tuple[str, ...], *, cluster: bool) -> None:
    """The settings' own rules (MetadataError naming the key and the reason)."""
    where = f'queueFormat "{fmt.name}"'
    if s.key_prefix is not None and fmt.default_prefix is None:
        raise MetadataError(
            f'parameter "keyPrefix" does not apply to {where}: {fmt.name} has no key '
            "prefix setting (remove it)"
        )
    if not fmt.priorities:
        for given, name in ((s.priority_steps, "prioritySteps"),
                            (s.priority_separator, "prioritySeparator")):  # fmt: skip
            if given is not None:
                raise MetadataError(
                    f'parameter "{name}" applies to queueFormat "celery" only, not {where}'
                )
    if fmt.rules is not None:
        fmt.rules(s)
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
        given = f'parameter "queueFormat" value "{fmt.name}"'
        if not fmt.cluster:
            raise MetadataError(
                f'{given} is not supported on "redis-cluster": {fmt.name} does not run on '
                "Redis Cluster (its count reads keys named inside its data)"
            )
        keys = fmt.plan(s).keys
        if len({slot(k) for k in keys}) > 1:
            raise MetadataError(
                f'{given} on "redis-cluster" needs every key of the queue in one hash slot '
                f"({', '.join(repr(k) for k in keys)} are not): put a hash tag in "
                '"queueName" or "keyPrefix", as the framework\'s cluster guide does (e.g. '
                'keyPrefix "{bull}")'
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


@dataclass(frozen=True)
class Script:
    """A count's Lua source and the SHA1 EVALSHA runs it by."""

    source: str
    sha: str


def lua(source: str) -> Script:
    """A read-only Lua script and the SHA1 EVALSHA runs it by."""
    return Script(source, hashlib.sha1(source.encode()).hexdigest())  # noqa: S324


@functools.cache
def _script(name: str) -> Script:
    files = resources.files("scaler.brokers.redis.formats")
    return lua(
        "\n".join(
            (files / f"{part}.lua").read_text(encoding="utf-8")
            for part in ("prelude", name, "epilogue")
        )
    )
