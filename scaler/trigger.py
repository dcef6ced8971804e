"""The domain's one shape of a trigger, and the adapter boundary it is read through.

A :class:`Trigger` is what one ScaledJob trigger's metadata means: KEDA's metric
name, the target and activation threshold, and a ``query`` — a frozen dataclass
owned by the broker that says what to count and where. Two triggers with equal
queries share one broker read, whatever their targets.

An adapter's read returns a *sample*: a number for most brokers, or a richer
record (RabbitMQ: depth and rates) that the trigger's ``rule`` turns into KEDA's
value and activity, so triggers in different modes still share one read.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from scaler.metadata import fingerprint

_METRIC_NAME_REPLACED = str.maketrans({c: "-" for c in "/.:%()"})


def metric_name(prefix: str, name: str) -> str:
    """KEDA's metric name: ``<prefix>-<name>`` with ``/ . : % ( )`` replaced by ``-``."""
    return f"{prefix}-{name}".translate(_METRIC_NAME_REPLACED)


@dataclass(frozen=True)
class Trigger:
    scaler_type: str
    metric_name: str
    target: float
    activation: float
    query: Any  # a frozen dataclass of the adapter's; Secrets inside, never clear text
    #: sample -> (value, active); None: the sample is the value, active when greater
    #: than ``activation``.
    rule: Callable[[Any], tuple[float, bool]] | None = field(default=None, compare=False)
    #: Identity of the broker read: equal for triggers that must share one read,
    #: with every credential reduced to a salted digest.
    read_key: Hashable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "read_key", (self.scaler_type, fingerprint(self.query)))

    def evaluate(self, sample: Any) -> tuple[float, bool]:
        """KEDA's value and activity for a sample. Default rule, as in every built-in
        queue scaler: the value is the count, active when strictly greater than the
        activation threshold."""
        if self.rule is not None:
            return self.rule(sample)
        value = float(sample)
        return value, value > self.activation


@runtime_checkable
class Adapter(Protocol):
    """Reads one sample (usually a number) for a query. Connections are opened lazily and reused.

    ``read`` raises :class:`scaler.errors.ScalerError` subclasses only; it may be
    cancelled (the caller bounds it with the read timeout) and must leave shared
    connections usable for other queries when it is.
    """

    async def read(self, query: Any) -> Any: ...

    async def aclose(self) -> None: ...
