"""The domain's one shape of a trigger, and the adapter boundary it is read through.

A :class:`Trigger` is what one ScaledJob trigger's metadata means: KEDA's metric
name, the target and activation threshold, and a ``query`` — a frozen dataclass
owned by the broker that says what to count and where. Two triggers with equal
queries share one broker read, whatever their targets.

An adapter's read returns a *sample*: a number for most brokers, or a richer
record (RabbitMQ: depth and rates; :class:`Aged`: depth and the oldest item's
time) that the trigger's ``rule`` turns into KEDA's value and activity, so
triggers in different modes still share one read. A rule is given the wall clock's
``now`` (injected by the caller), which only an age needs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from scaler.guard import Destination
from scaler.metadata import fingerprint

_METRIC_NAME_REPLACED = str.maketrans({c: "-" for c in "/.:%()"})


def metric_name(prefix: str, name: str) -> str:
    """KEDA's metric name: ``<prefix>-<name>`` with ``/ . : % ( )`` replaced by ``-``."""
    return f"{prefix}-{name}".translate(_METRIC_NAME_REPLACED)


class Query(Hashable, Protocol):
    """What an adapter reads: a frozen dataclass of its broker's (Secrets inside, never
    clear text), equal for triggers that share one read."""

    def destinations(self) -> tuple[Destination, ...]:
        """Where a read connects, for the broker policy to check before any dial."""
        ...


Q = TypeVar("Q", bound=Query)
S = TypeVar("S")
Q_contra = TypeVar("Q_contra", bound=Query, contravariant=True)
S_co = TypeVar("S_co", covariant=True)


@dataclass(frozen=True)
class Above:
    """The rule of every built-in queue scaler: the sample (a count) is the value,
    active when strictly greater than the activation threshold."""

    activation: float

    def __call__(self, sample: float, now: float) -> tuple[float, bool]:
        value = float(sample)
        return value, value > self.activation


@dataclass(frozen=True)
class Aged:
    """A read for ``measure: age``: the ready count and, from the broker's own
    timestamps, when the oldest ready item became ready (Unix seconds; None when
    nothing is ready). A broker that reports an age rather than a time (SQS, from
    CloudWatch) gives ``age`` instead: a reading taken as it is, never aged further."""

    length: float
    oldest: float | None = None
    age: float | None = None

    def age_at(self, now: float) -> float:
        """Seconds the oldest ready item has waited at ``now`` (0 when none waits; a
        timestamp ahead of the clock counts 0, never negative)."""
        if self.age is not None:
            return max(0.0, self.age)
        if self.oldest is None:
            return 0.0
        return max(0.0, now - self.oldest)


class HasAge(Protocol):
    """A sample that can tell its oldest ready item's age (:class:`Aged`, or a broker's
    richer record that carries one)."""

    def age_at(self, now: float) -> float: ...


@dataclass(frozen=True)
class OldestAge:
    """The rule of ``measure: age``: the oldest ready item's age in seconds is the
    value, active when strictly greater than ``activationAge``."""

    activation: float

    def __call__(self, sample: HasAge, now: float) -> tuple[float, bool]:
        value = sample.age_at(now)
        return value, value > self.activation


@dataclass(frozen=True)
class Trigger(Generic[Q, S]):
    """What one trigger's metadata means: KEDA's metric name, target and activation,
    the query its broker reads and the rule that turns a sample into KEDA's value and
    activity (:class:`Above` for a count)."""

    scaler_type: str
    metric_name: str
    target: float
    activation: float
    query: Q
    rule: Callable[[S, float], tuple[float, bool]] = field(compare=False)
    #: Identity of the broker read: equal for triggers that must share one read,
    #: with every credential reduced to a salted digest.
    read_key: Hashable = field(init=False, repr=False, compare=False)
    #: Where the read dials first (the query's, worked out once: a trigger is reused
    #: for every call that carries its metadata).
    destinations: tuple[Destination, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_key", (self.scaler_type, fingerprint(self.query)))
        object.__setattr__(self, "destinations", self.query.destinations())

    def evaluate(self, sample: S, now: float) -> tuple[float, bool]:
        """KEDA's value and activity for a sample, at the wall clock's ``now``."""
        return self.rule(sample, now)

    @property
    def measures_age(self) -> bool:
        return isinstance(self.rule, OldestAge)


def counting(
    scaler_type: str, spec: tuple[str, float], activation: float, query: Q
) -> Trigger[Q, float]:
    """A trigger whose sample is a count, with every built-in queue scaler's rule
    (:class:`Above`); ``spec`` is (KEDA's metric name, target)."""
    name, target = spec
    return Trigger(scaler_type, name, target, activation, query, Above(activation))


def aging(
    scaler_type: str, spec: tuple[str, float], activation: float, query: Q
) -> Trigger[Q, HasAge]:
    """A trigger of ``measure: age``: its query reads an :class:`Aged` sample and the
    value is the oldest ready item's age (:class:`OldestAge`); ``spec`` is (KEDA's
    metric name, targetAge)."""
    name, target = spec
    return Trigger(scaler_type, name, target, activation, query, OldestAge(activation))


@runtime_checkable
class Adapter(Protocol[Q_contra, S_co]):
    """Reads one sample (usually a number) for a query. Connections are opened lazily and reused.

    ``read`` raises :class:`scaler.errors.ScalerError` subclasses only; it may be
    cancelled (the caller bounds it with the read timeout) and must leave shared
    connections usable for other queries when it is.
    """

    async def read(self, query: Q_contra) -> S_co: ...

    async def aclose(self) -> None: ...


#: A trigger, or an adapter, of whichever broker: the registry maps scalerType strings
#: to brokers of different query and sample types, so where it hands them on is the
#: one place the types meet Any. Past it, a broker's own code is typed throughout.
AnyTrigger = Trigger[Any, Any]
AnyAdapter = Adapter[Any, Any]
