"""The one registry from ``scalerType`` to metadata class and adapter.

Adding a broker means: a module in ``scaler/adapters/`` with its metadata
class(es) and Adapter, and one entry per scalerType in ``KINDS`` below.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from scaler.adapters.base import Adapter, Trigger, metric_name
from scaler.adapters.memory import MemoryMetadata
from scaler.adapters.rabbitmq import RabbitMetadata
from scaler.adapters.redis import RedisListMetadata, RedisStreamMetadata
from scaler.adapters.sqs import SqsMetadata
from scaler.credentials import CredentialStore, apply_without_store
from scaler.errors import MetadataError, ScalerError

SCALER_TYPE_KEY = "scalerType"


class _Parses(Protocol):
    """What a metadata class offers the registry."""

    def trigger(self, scaler_type: str) -> Trigger: ...

    def spec(self, scaler_type: str) -> tuple[str, float]: ...


@dataclass(frozen=True)
class Kind:
    metadata: type[
        MemoryMetadata | RedisListMetadata | RedisStreamMetadata | SqsMetadata | RabbitMetadata
    ]
    adapter: str  # key into the adapters mapping: one adapter serves several kinds


KINDS: dict[str, Kind] = {
    "redis": Kind(RedisListMetadata, "redis"),
    "redis-cluster": Kind(RedisListMetadata, "redis"),
    "redis-sentinel": Kind(RedisListMetadata, "redis"),
    "redis-streams": Kind(RedisStreamMetadata, "redis"),
    "redis-cluster-streams": Kind(RedisStreamMetadata, "redis"),
    "redis-sentinel-streams": Kind(RedisStreamMetadata, "redis"),
    "aws-sqs-queue": Kind(SqsMetadata, "sqs"),
    "rabbitmq": Kind(RabbitMetadata, "rabbitmq"),
    "memory": Kind(MemoryMetadata, "memory"),
}


class Triggers:
    """Parses scalerMetadata into Triggers and routes reads to the right adapter.

    KEDA sends the same metadata on every poll, so parsed triggers are kept (up to
    ``cache_size``) under a salted digest of the metadata: never the clear text.
    Metadata errors are not kept; a bad trigger is parsed (and refused) each time.
    """

    def __init__(
        self,
        adapters: Mapping[str, Adapter],
        *,
        cache_size: int = 4096,
        credentials: CredentialStore | None = None,
    ) -> None:
        self._adapters = dict(adapters)
        self._credentials = credentials
        self._parsed: OrderedDict[bytes, Trigger] = OrderedDict()
        self._cache_size = cache_size
        self._salt = os.urandom(16)

    @property
    def scaler_types(self) -> tuple[str, ...]:
        return tuple(t for t, kind in KINDS.items() if kind.adapter in self._adapters)

    def parse(self, metadata: Mapping[str, str]) -> Trigger:
        """The Trigger for this metadata, or MetadataError naming the bad key.

        A ``credentialsRef`` is resolved first, so rotated credentials make a new
        Trigger (and a new connection identity)."""
        if self._credentials is not None:
            metadata = self._credentials.apply(metadata)
        else:
            metadata = apply_without_store(metadata)
        digest = hmac.new(self._salt, digestmod=hashlib.sha256)
        for k, v in sorted(metadata.items()):
            digest.update(b"%d:%s%d:%s" % (len(k), k.encode(), len(v), v.encode()))
        key = digest.digest()
        trigger = self._parsed.get(key)
        if trigger is not None:
            self._parsed.move_to_end(key)
            return trigger
        trigger = self._parse(metadata)
        self._parsed[key] = trigger
        if len(self._parsed) > self._cache_size:
            self._parsed.popitem(last=False)
        return trigger

    def spec(self, metadata: Mapping[str, str]) -> tuple[str, float]:
        """(metric name, target) for GetMetricSpec, whenever they can be derived.

        KEDA hides a failing GetMetricSpec (operator log only) but shows a failing
        GetMetrics as a Warning event on the ScaledJob. So a trigger whose metadata
        is wrong anywhere but in its name still gets a spec, from a lenient parse
        (bad keys take their defaults), and GetMetrics reports what is wrong. Only
        when even the name cannot be derived is the name a placeholder."""
        try:
            trigger = self.parse(metadata)
        except ScalerError:
            pass
        else:
            return trigger.metric_name, trigger.target
        scaler_type = metadata.get(SCALER_TYPE_KEY, "").strip()
        kind = KINDS.get(scaler_type)
        if kind is not None:
            try:
                parsed: _Parses = kind.metadata.parse(
                    metadata, scaler_type=scaler_type, lenient=True
                )
                return parsed.spec(scaler_type)
            except ScalerError:
                pass
        return metric_name(scaler_type or "external", "invalid-metadata"), 1.0

    def _parse(self, metadata: Mapping[str, str]) -> Trigger:
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
