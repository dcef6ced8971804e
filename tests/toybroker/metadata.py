"""``scalerType: lines``: ``path`` (required), ``lineCount`` (5), ``activationLineCount`` (0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from scaler.guard import Destination
from scaler.metadata import TriggerMetadata, key, positive
from scaler.trigger import Above, Trigger, metric_name


@dataclass(frozen=True)
class LinesQuery:
    path: str

    def destinations(self) -> tuple[Destination, ...]:
        return ()  # a local file: nothing to dial


@dataclass(frozen=True, kw_only=True)
class LinesMetadata(TriggerMetadata):
    scaler_types: ClassVar[tuple[str, ...]] = ("lines",)

    path: str = key("path", doc="a file whose lines are the queue")
    line_count: int = key("lineCount", default=5, check=positive)
    activation_line_count: int = key("activationLineCount", default=0)

    def spec(self, scaler_type: str) -> tuple[str, float]:
        return metric_name("lines", self.path), float(self.line_count)

    def trigger(self, scaler_type: str) -> Trigger[LinesQuery, float]:
        name, target = self.spec(scaler_type)
        activation = float(self.activation_line_count)
        return Trigger(
            scaler_type, name, target, activation, LinesQuery(self.path), Above(activation)
        )
