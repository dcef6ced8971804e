"""The ``memory`` trigger metadata (tests and the demo): a queue name in this process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from scaler.guard import Destination
from scaler.metadata import TriggerMetadata, key, positive
from scaler.trigger import Trigger, counting, metric_name


@dataclass(frozen=True)
class MemoryQuery:
    queue: str

    def destinations(self) -> tuple[Destination, ...]:
        return ()  # in this process


@dataclass(frozen=True, kw_only=True)
class MemoryMetadata(TriggerMetadata):
    scaler_types: ClassVar[tuple[str, ...]] = ("memory",)

    queue_name: str = key("queueName", doc="the in-process queue to count")
    queue_length: int = key("queueLength", default=5, check=positive, doc="target per Job")
    activation_queue_length: int = key(
        "activationQueueLength", default=0, doc="active when depth is greater"
    )

    def spec(self, scaler_type: str) -> tuple[str, float]:
        return metric_name("memory", self.queue_name), float(self.queue_length)

    def trigger(self, scaler_type: str) -> Trigger[MemoryQuery, float]:
        activation = float(self.activation_queue_length)
        return counting(
            scaler_type, self.spec(scaler_type), activation, MemoryQuery(self.queue_name)
        )
