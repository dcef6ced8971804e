"""The one registry: ``scalerType`` -> (metadata class, broker), and the parsing,
caching and policies every trigger goes through on its way to a broker read.

Adding a broker is a folder in ``scaler/brokers/`` (``metadata.py``, ``client.py``
and an ``open_adapter`` in its ``__init__``) and its rows in :data:`KINDS`; a test
registers a toy broker from the test folder alone (tests/unit/test_registry.py).
Nothing here imports a broker's client: ``open_adapter`` imports it when called.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from scaler.brokers import memory, rabbitmq, redis, sqs
from scaler.brokers.memory.metadata import MemoryMetadata
from scaler.brokers.pool import ClientBudget
from scaler.brokers.rabbitmq.metadata import RabbitMetadata
from scaler.brokers.redis.metadata import RedisListMetadata, RedisStreamMetadata
from scaler.brokers.sqs.metadata import SqsMetadata
from scaler.credentials import REF_KEY, CredentialStore, apply_without_store
from scaler.errors import MetadataError, ScalerError
from scaler.guard import check_metadata_size, quoted
from scaler.kube import auth as kube_auth
from scaler.metadata import TriggerMetadata, UnknownKey, unknown_keys
from scaler.metrics import BoundedSeries
from scaler.settings import Settings
from scaler.trigger import AnyAdapter, AnyTrigger, metric_name

SCALER_TYPE_KEY = "scalerType"


#: Told of the keys a trigger's metadata carries that its scalerType does not read
#: (namespace, name, scalerType, the keys): the server logs and counts them.
UnknownKeys = Callable[[str, str, str, tuple[UnknownKey, ...]], None]


def kind_name(metadata: Mapping[str, str]) -> str:
    """The scalerType a trigger's metadata names (trimmed, as KEDA reads values)."""
    return metadata.get(SCALER_TYPE_KEY, "").strip()


class OpenAdapter(Protocol):
    """A broker package's ``open_adapter``: its adapter, for a server's settings."""

    def __call__(self, *, settings: Settings, budget: ClientBudget) -> AnyAdapter: ...


#: A broker's own rule over a parsed trigger, run before every read (the scaler's
#: operator's settings decide it): (trigger, its credentials came from a credential
#: set) -> None, or PolicyError.
TriggerCheck = Callable[[AnyTrigger, bool], None]


class OpenPolicy(Protocol):
    """A broker package's ``open_policy``: its rule, for a server's settings."""

    def __call__(self, *, settings: Settings) -> TriggerCheck: ...


@dataclass(frozen=True)
class Broker:
    """One broker: its name (the key of the server's adapters; one adapter serves every
    scalerType of its broker), how a server opens its adapter, and the broker's own
    rule over triggers, if it has one (SQS: where signed requests may go)."""

    name: str
    open_adapter: OpenAdapter
    #: Offered only when the server's settings say so (``--enable-memory``).
    opt_in: bool = False
    open_policy: OpenPolicy | None = None


@dataclass(frozen=True)
class Kind:
    metadata: type[TriggerMetadata]
    broker: Broker


REDIS = Broker("redis", redis.open_adapter)
SQS = Broker("sqs", sqs.open_adapter, open_policy=sqs.open_policy)
RABBITMQ = Broker("rabbitmq", rabbitmq.open_adapter)
MEMORY = Broker("memory", memory.open_adapter, opt_in=True)

KINDS: dict[str, Kind] = {
    "redis": Kind(RedisListMetadata, REDIS),
    "redis-cluster": Kind(RedisListMetadata, REDIS),
    "redis-sentinel": Kind(RedisListMetadata, REDIS),
    "redis-streams": Kind(RedisStreamMetadata, REDIS),
    "redis-cluster-streams": Kind(RedisStreamMetadata, REDIS),
    "redis-sentinel-streams": Kind(RedisStreamMetadata, REDIS),
    "aws-sqs-queue": Kind(SqsMetadata, SQS),
    "rabbitmq": Kind(RabbitMetadata, RABBITMQ),
    "memory": Kind(MemoryMetadata, MEMORY),
}


def open_policies(settings: Settings, kinds: Mapping[str, Kind] = KINDS) -> dict[str, TriggerCheck]:
    """Each broker's own rule over triggers, by broker name, for ``settings``."""
    brokers = {kind.broker.name: kind.broker for kind in kinds.values()}
    return {
        name: broker.open_policy(settings=settings)
        for name, broker in brokers.items()
        if broker.open_policy is not None
    }


def open_adapters(
    settings: Settings, budget: ClientBudget, kinds: Mapping[str, Kind] = KINDS
) -> dict[str, AnyAdapter]:
    """One adapter per broker of ``kinds`` that ``settings`` offer, sharing ``budget``."""
    brokers = {kind.broker.name: kind.broker for kind in kinds.values()}
    return {
        name: broker.open_adapter(settings=settings, budget=budget)
        for name, broker in brokers.items()
        if not broker.opt_in or settings.enable_memory
    }


class Triggers:
    """Parses scalerMetadata into Triggers and routes reads to the right adapter.

    KEDA sends the same metadata on every poll, so parsed triggers are kept (up to
    ``cache_size``) under a salted digest of the metadata: never the clear text.
    Metadata errors are not kept; a bad trigger is parsed (and refused) each time.

    A second map, also up to ``cache_size``, skips even that work for a request seen
    before: it is keyed by a salted digest of the request's own bytes (``wire``: the
    ScaledObjectRef's deterministic serialization: namespace, name and metadata),
    and holds only what is a function of those bytes alone: a trigger that parsed and
    passed its broker's policy, without ``--kubernetes`` (an authenticationRef reads
    objects that change) or a ``credentialsRef`` (files that rotate).
    """

    def __init__(
        self,
        adapters: Mapping[str, AnyAdapter],
        *,
        cache_size: int = 4096,
        credentials: CredentialStore | None = None,
        policies: Mapping[str, TriggerCheck] | None = None,
        kube: kube_auth.Objects | None = None,
        kinds: Mapping[str, Kind] = KINDS,
        on_unknown: UnknownKeys | None = None,
    ) -> None:
        self._adapters = dict(adapters)
        self._on_unknown = on_unknown
        # (namespace, name, metadata digest) already checked for unknown keys: the parse
        # cache is shared by equal metadata, the warnings are per ScaledJob.
        self._checked: BoundedSeries[tuple[str, str, bytes]] = BoundedSeries(cache_size)
        self._kinds = dict(kinds)
        self._kube = kube
        self._credentials = credentials
        self._policies = dict(policies or {})
        self._parsed: OrderedDict[bytes, AnyTrigger] = OrderedDict()
        self._requests: OrderedDict[bytes, AnyTrigger] = OrderedDict()
        self._cache_size = cache_size
        self._salt = os.urandom(16)

    @property
    def scaler_types(self) -> tuple[str, ...]:
        return tuple(t for t, kind in self._kinds.items() if kind.broker.name in self._adapters)

    def parse(
        self,
        metadata: Mapping[str, str],
        namespace: str = "",
        name: str = "",
        *,
        wire: bytes | None = None,
    ) -> AnyTrigger:
        """The AnyTrigger for this metadata, or MetadataError naming the bad key and
        PolicyError for what the scaler's rules refuse.

        ``wire``, when given, is the request these three came from, serialized
        deterministically: a request answered before is then found by its digest
        alone (see the class's text), without reading ``metadata``.

        ``namespace`` and ``name`` are the ScaledJob's (KEDA's ScaledObjectRef); the
        namespace is the tenant. With ``--kubernetes`` the trigger's
        authenticationRef is resolved first (from the watches' cache), then a
        ``credentialsRef``, for that namespace, so rotated credentials make a new
        AnyTrigger (and a new connection identity)."""
        request = None
        if wire is not None:
            request, known = self.recall(wire)
            if known is not None:
                return known
        # A plain dict: protobuf's map is read several times, slower each time.
        metadata = given = raw = dict(metadata)
        check_metadata_size(metadata)
        auth_only: dict[str, str] = {}
        kind = self._kinds.get(kind_name(metadata))
        keys = kind.metadata if kind is not None else None
        if self._kube is not None:
            auth = kube_auth.resolve(self._kube, namespace, name, metadata, keys)
            if auth is not None:
                metadata, auth_only = kube_auth.apply(metadata, auth, keys)
                raw = metadata
        if self._credentials is not None:
            metadata = self._credentials.apply(metadata, namespace, keys)
        else:
            metadata = apply_without_store(metadata)
        # One keyed hash over an unambiguous rendering (repr quotes every string): the
        # authenticationRef's own keys ride apart, so no metadata key can stand in.
        shown = repr((sorted(metadata.items()), sorted(auth_only.items())) if auth_only
                     else sorted(metadata.items()))  # fmt: skip
        key = hashlib.blake2b(
            shown.encode("utf-8", "surrogatepass"), key=self._salt, digest_size=32
        ).digest()
        if keys is not None and self._on_unknown is not None:
            self._check_unknown(keys, given, namespace, name, key)
        trigger = self._parsed.get(key)
        if trigger is not None:
            self._parsed.move_to_end(key)
        else:
            trigger = self._parse(metadata, auth_only)
            self._parsed[key] = trigger
            if len(self._parsed) > self._cache_size:
                self._parsed.popitem(last=False)
        if kind is not None and (policy := self._policies.get(kind.broker.name)) is not None:
            policy(trigger, bool(raw.get(REF_KEY, "").strip()))
        if request is not None and self._kube is None and REF_KEY not in given:
            self._requests[request] = trigger
            if len(self._requests) > self._cache_size:
                self._requests.popitem(last=False)
        return trigger

    def recall(self, wire: bytes) -> tuple[bytes, AnyTrigger | None]:
        """The request's digest and, when the request map holds it, its trigger: what
        :meth:`parse` would answer for that request, found without parsing."""
        request = hashlib.blake2b(wire, key=self._salt, digest_size=32).digest()
        known = self._requests.get(request)
        if known is not None:
            self._requests.move_to_end(request)
        return request, known

    @property
    def cache_size(self) -> int:
        return self._cache_size

    def _check_unknown(
        self,
        keys: type[TriggerMetadata],
        given: Mapping[str, str],
        namespace: str,
        name: str,
        digest: bytes,
    ) -> None:
        seen = (namespace, name, digest)
        if seen in self._checked:
            return
        self._checked.touch(seen)
        unknown = unknown_keys(keys, given)
        if unknown and self._on_unknown is not None:
            self._on_unknown(namespace, name, kind_name(given), unknown)

    def spec(
        self,
        metadata: Mapping[str, str],
        namespace: str = "",
        name: str = "",
        *,
        wire: bytes | None = None,
    ) -> tuple[str, float]:
        """(metric name, target) for GetMetricSpec, whenever they can be derived.

        KEDA hides a failing GetMetricSpec (operator log only) but shows a failing
        GetMetrics as a Warning event on the ScaledJob. So a trigger whose metadata
        is wrong anywhere but in its name still gets a spec, from a lenient parse
        (bad keys take their defaults), and GetMetrics reports what is wrong. Only
        when even the name cannot be derived (or the metadata is too large to read)
        is the name a placeholder, ``<scalerType>-invalid-metadata``."""
        try:
            trigger = self.parse(metadata, namespace, name, wire=wire)  # checks the size first
        except ScalerError:
            pass
        else:
            return trigger.metric_name, trigger.target
        metadata = dict(metadata)
        scaler_type = kind_name(metadata)
        named = re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", scaler_type) is not None
        placeholder = metric_name(scaler_type if named else "external", "invalid-metadata")
        try:
            check_metadata_size(metadata)
        except ScalerError:
            return placeholder, 1.0
        kind = self._kinds.get(scaler_type)
        if kind is not None:
            try:
                parsed = kind.metadata.parse(metadata, scaler_type=scaler_type, lenient=True)
                return parsed.spec(scaler_type)
            except ScalerError:
                pass
        return placeholder, 1.0

    def _parse(self, metadata: Mapping[str, str], auth: Mapping[str, str]) -> AnyTrigger:
        scaler_type = metadata.get(SCALER_TYPE_KEY, "")
        kind = self._kinds.get(scaler_type)
        if kind is None or kind.broker.name not in self._adapters:
            supported = ", ".join(self.scaler_types)
            if not scaler_type:
                raise MetadataError(
                    f'parameter "{SCALER_TYPE_KEY}" is required: one of {supported}'
                )
            raise MetadataError(
                f'parameter "{SCALER_TYPE_KEY}" value "{quoted(scaler_type)}" is not supported '
                f"by this server: use one of {supported}"
            )
        parsed = kind.metadata.parse(metadata, scaler_type=scaler_type, auth=auth)
        return parsed.trigger(scaler_type)

    def adapter_for(self, trigger: AnyTrigger) -> AnyAdapter:
        return self._adapters[self._kinds[trigger.scaler_type].broker.name]

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
