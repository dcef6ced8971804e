"""The one registry from ``scalerType`` to metadata class and adapter.

Adding a broker means: a module in ``scaler/adapters/`` with its metadata
class(es) and Adapter, and one entry per scalerType in ``KINDS`` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from scaler.adapters.base import Adapter, Trigger
from scaler.adapters.memory import MemoryMetadata
from scaler.adapters.redis import RedisListMetadata, RedisStreamMetadata
from scaler.errors import MetadataError

SCALER_TYPE_KEY = "scalerType"


class _Parses(Protocol):
    """What a metadata class offers the registry."""

    def trigger(self, scaler_type: str) -> Trigger: ...


@dataclass(frozen=True)
class Kind:
    metadata: type[MemoryMetadata | RedisListMetadata | RedisStreamMetadata]
    adapter: str  # key into the adapters mapping: one adapter serves several kinds


KINDS: dict[str, Kind] = {
    "redis": Kind(RedisListMetadata, "redis"),
    "redis-cluster": Kind(RedisListMetadata, "redis"),
    "redis-sentinel": Kind(RedisListMetadata, "redis"),
    "redis-streams": Kind(RedisStreamMetadata, "redis"),
    "redis-cluster-streams": Kind(RedisStreamMetadata, "redis"),
    "redis-sentinel-streams": Kind(RedisStreamMetadata, "redis"),
    "memory": Kind(MemoryMetadata, "memory"),
}


class Triggers:
    """Parses scalerMetadata into Triggers and routes reads to the right adapter."""

    def __init__(self, adapters: Mapping[str, Adapter]) -> None:
        self._adapters = dict(adapters)

    @property
    def scaler_types(self) -> tuple[str, ...]:
        return tuple(t for t, kind in KINDS.items() if kind.adapter in self._adapters)

    def parse(self, metadata: Mapping[str, str]) -> Trigger:
        scaler_type = metadata.get(SCALER_TYPE_KEY, "")
        kind = KINDS.get(scaler_type)
        if kind is None or kind.adapter not in self._adapters:
            supported = ", ".join(self.scaler_types)
            if not scaler_type:
                raise MetadataError(
                    f'parameter "{SCALER_TYPE_KEY}" is required: one of {supported}'
                )
            raise MetadataError(
                f'parameter "{SCALER_TYPE_KEY}" value "{scaler_type}" is not supported by this '
                f"server: use one of {supported}"
            )
        parsed: _Parses = kind.metadata.parse(metadata, scaler_type=scaler_type)
        return parsed.trigger(scaler_type)

    def adapter_for(self, trigger: Trigger) -> Adapter:
        return self._adapters[KINDS[trigger.scaler_type].adapter]

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
