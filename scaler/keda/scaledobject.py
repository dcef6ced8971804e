"""A ScaledObject as KEDA v2.21 and the HPA controller scale it: the manifest read
as KEDA reads it, and one poll's outcome.

Two loops move a ScaledObject's target (DESIGN §3 for the ScaledJob's one):

- KEDA's (``pkg/scaling/executor/scale_scaledobjects.go``, every pollingInterval):
  with a trigger active and the target at 0 (or below minReplicaCount with
  idleReplicaCount set) it scales to minReplicaCount, or 1; with none active and
  the target above 0 (minReplicaCount 0) or above idleReplicaCount, it scales to
  idleReplicaCount (else minReplicaCount) once ``cooldownPeriod`` (default 300 s)
  has passed since a trigger was last active. A failing trigger with none active
  and no fallback leaves the target alone and turns Ready False.
- The HPA's (``pkg/controller/podautoscaler``, every sync, 15 s by default), on the
  HPA KEDA creates (minReplicas max(minReplicaCount, 1), maxReplicas maxReplicaCount,
  default 100), idle at 0 replicas: for each metric, ``AverageValue``
  (GetExternalPerPodMetricReplicas) wants ceil(value / target) replicas unless
  value / (target x replicas) is within the tolerance (0.1); ``Value``
  (GetExternalMetricReplicas) wants ceil(value / target x ready replicas) unless
  value / target is within it. The largest count wins, clamped to its bounds; its
  ``behavior`` then limits how fast that count is reached (not modelled here).

The e2e suite checks this against the HPA controller's own ReplicaCalculator and
against what the real HPA and KEDA do (tests/e2e/test_scaledobjects.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scaler.documents import Doc, mapping, mappings, path, text
from scaler.keda.env import Lookup
from scaler.keda.manifest import (
    DEFAULT_POLLING_INTERVAL,
    ManifestError,
    TriggerSpec,
    Unresolved,
    container_environment,
    read_triggers,
)

DEFAULT_MAX_REPLICAS = 100  # defaultHPAMaxReplicas
DEFAULT_COOLDOWN = 300  # defaultCooldownPeriod, seconds
TOLERANCE = 0.1  # the controller's --horizontal-pod-autoscaler-tolerance default
METRIC_TYPES = ("AverageValue", "Value")  # Utilization is for CPU and memory only


@dataclass(frozen=True)
class ScaledObjectSpec:
    min_replica_count: int = 0
    max_replica_count: int = DEFAULT_MAX_REPLICAS
    idle_replica_count: int | None = None
    cooldown_period: int = DEFAULT_COOLDOWN
    fallback_replicas: int | None = None

    @property
    def hpa_min(self) -> int:
        """GetHPAMinReplicas: minReplicaCount when above 0, else 1."""
        return self.min_replica_count if self.min_replica_count > 0 else 1

    @property
    def hpa_max(self) -> int:
        return self.max_replica_count


@dataclass(frozen=True)
class ScaledObject:
    name: str
    namespace: str
    polling_interval: int
    spec: ScaledObjectSpec
    triggers: tuple[TriggerSpec, ...]
    target: str  # "Kind/name" of scaleTargetRef
    unresolved: tuple[Unresolved, ...] = ()


def _int(value: object, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where} must be a whole number, not {value!r}")
    if value < minimum:
        raise ManifestError(f"{where} must be >= {minimum}, not {value}")
    if value >= 2**31:
        raise ManifestError(f"{where} {value} does not fit the CRD's int32")
    return value


def _optional(spec: Doc, key: str, minimum: int = 0) -> int | None:
    value = spec.get(key)
    return None if value is None else _int(value, key, minimum)


def target_of(doc: Doc) -> tuple[str, str]:
    """scaleTargetRef's kind (default Deployment) and name."""
    ref = mapping(path(doc, "spec", "scaleTargetRef"))
    name = text(ref.get("name"))
    if not name:
        raise ManifestError("spec.scaleTargetRef.name is missing")
    return text(ref.get("kind")) or "Deployment", name


def from_manifest(
    doc: Doc,
    target: Doc | None = None,
    *,
    env: Mapping[str, str] | None = None,
    lookup: Lookup | None = None,
) -> ScaledObject:
    """A :class:`ScaledObject` from its manifest and its scale target's (``target``:
    its Pod template's containers give ``...FromEnv``, as KEDA reads them; None: the
    target is not at hand, and every such key is reported unresolved)."""
    if doc.get("kind") != "ScaledObject":
        raise ManifestError(f"kind is {doc.get('kind')!r}, not ScaledObject")
    spec = mapping(doc.get("spec"))
    if not spec:
        raise ManifestError("spec is missing")
    meta = mapping(doc.get("metadata"))
    kind, name = target_of(doc)
    low = _optional(spec, "minReplicaCount") or 0
    high = _optional(spec, "maxReplicaCount")
    idle = _optional(spec, "idleReplicaCount")
    # CheckReplicaCountBoundsAreValid, which KEDA's webhook and controller apply: its
    # minimum is the HPA's (at least 1) when minReplicaCount is given, else 0
    floor = max(low, 1) if spec.get("minReplicaCount") is not None else 0
    ceiling = DEFAULT_MAX_REPLICAS if high is None else high
    if floor > ceiling:
        raise ManifestError(
            f"KEDA refuses it: MinReplicaCount={floor} must be less than MaxReplicaCount={ceiling}"
        )
    if idle is not None and idle >= floor:
        raise ManifestError(
            f"KEDA refuses it: IdleReplicaCount={idle} must be less than MinReplicaCount={floor}"
        )
    cooldown = _optional(spec, "cooldownPeriod")
    fallback = _optional(mapping(spec.get("fallback")), "replicas")
    polling = _optional(spec, "pollingInterval", 1)
    containers = mappings(path(target, "spec", "template", "spec", "containers"))
    environment = container_environment(
        spec, env or {}, lookup, containers=containers,
        source=text(mapping(spec.get("scaleTargetRef")).get("envSourceContainerName")),
        what=f"the {kind} {name}",
    )  # fmt: skip
    triggers, unresolved = read_triggers(spec, environment)
    for i, trigger in enumerate(triggers):
        if trigger.external and trigger.metric_type not in METRIC_TYPES:
            raise ManifestError(
                f"spec.triggers[{i}].metricType {trigger.metric_type!r} must be one of "
                f"{METRIC_TYPES} for an external trigger"
            )
    return ScaledObject(
        name=text(meta.get("name"), "scaledobject"),
        namespace=text(meta.get("namespace"), "default"),
        polling_interval=DEFAULT_POLLING_INTERVAL if polling is None else polling,
        spec=ScaledObjectSpec(
            min_replica_count=low,
            max_replica_count=DEFAULT_MAX_REPLICAS if high is None else high,
            idle_replica_count=idle,
            cooldown_period=DEFAULT_COOLDOWN if cooldown is None else cooldown,
            fallback_replicas=fallback,
        ),
        triggers=triggers,
        target=f"{kind}/{name}",
        unresolved=unresolved,
    )


# ---- the HPA -------------------------------------------------------------------------
def _milli(value: float) -> int:
    """resource.Quantity's MilliValue: the HPA computes in integer milli-units."""
    return math.ceil(round(value * 1000, 6))


def _within(ratio: float, tolerance: float) -> bool:
    return 1.0 - tolerance <= ratio <= 1.0 + tolerance


def hpa_metric_replicas(
    metric_type: str, value: float, target: float, replicas: int, ready: int | None = None,
    tolerance: float = TOLERANCE,
) -> int:  # fmt: skip
    """One metric's replica count in one HPA sync, before the bounds: ReplicaCalculator's
    GetExternalPerPodMetricReplicas (AverageValue) or GetExternalMetricReplicas (Value).
    ``ready``: the Running and Ready Pods (Value only; default: all ``replicas``)."""
    usage, goal = _milli(value), _milli(target)
    if goal <= 0:
        raise ValueError("the target must be above 0")
    if metric_type == "Value":
        ratio = usage / goal
        if replicas == 0:
            return math.ceil(ratio)
        if _within(ratio, tolerance):
            return replicas
        return math.ceil(ratio * (replicas if ready is None else ready))
    if replicas and _within(usage / (goal * replicas), tolerance):
        return replicas
    return math.ceil(usage / goal)


@dataclass(frozen=True)
class MetricReading:
    """One metric of one trigger as KEDA and the HPA read it."""

    metric_name: str
    metric_type: str
    value: float
    target: float
    active: bool
    error: str | None = None


@dataclass(frozen=True)
class ObjectDecision:
    """What one poll and the next HPA sync do, from ``replicas`` now."""

    replicas: int
    active: bool
    error: bool
    hpa_min: int
    hpa_max: int
    #: each served metric's count for the next HPA sync (None: it failed)
    per_metric: tuple[int | None, ...]
    #: the next HPA sync's count (None: the HPA does nothing: 0 replicas, or no metric)
    hpa_replicas: int | None
    #: what KEDA itself does this poll, and the count it sets (None: nothing)
    keda: str
    keda_replicas: int | None
    #: the count after this poll and the next HPA sync, and where it settles if the
    #: queue stays as it is (repeated syncs; a Value metric moves again each sync)
    next_replicas: int
    settles_at: int
    notes: tuple[str, ...] = field(default=())
    #: the readings decided on, in the order of ``per_metric``
    metrics: tuple[MetricReading, ...] = field(default=())


def _hpa(spec: ScaledObjectSpec, metrics: Sequence[MetricReading], replicas: int,
         tolerance: float) -> tuple[tuple[int | None, ...], int | None]:  # fmt: skip
    if replicas == 0:
        return tuple(None for _ in metrics), None
    per = tuple(
        None
        if m.error
        else hpa_metric_replicas(m.metric_type, m.value, m.target, replicas, tolerance=tolerance)
        for m in metrics
    )
    counts = [n for n in per if n is not None]
    if not counts:
        return per, None
    wanted = max(counts)
    if len(counts) < len(per) and wanted < replicas:
        wanted = replicas  # with a metric failing the HPA does not scale down
    return per, max(spec.hpa_min, min(spec.hpa_max, wanted))


def decide(
    spec: ScaledObjectSpec, metrics: Sequence[MetricReading], *, replicas: int,
    tolerance: float = TOLERANCE,
) -> ObjectDecision:  # fmt: skip
    """KEDA's RequestScale for this poll, then the HPA's next sync, from ``replicas``."""
    active = any(m.active and not m.error for m in metrics)
    error = any(m.error for m in metrics)
    low, idle = spec.min_replica_count, spec.idle_replica_count
    notes: list[str] = []
    keda, keda_replicas = "nothing: the HPA scales", None
    if active:
        if (idle is not None and replicas < low) or replicas == 0:
            keda_replicas = low if low > 0 else 1
            keda = f"activates the target: {replicas} -> {keda_replicas}"
        elif error:
            keda = "nothing: a trigger is active but another fails (Ready Unknown)"
    elif error and spec.fallback_replicas:
        keda = (f"nothing yet: after fallback.failureThreshold failed polls the HPA holds "
                f"{spec.fallback_replicas} replicas (fallback)")  # fmt: skip
    elif error:
        keda = "nothing: no trigger active and one fails, no fallback (Ready False, TriggerError)"
    elif (idle is not None and replicas > idle) or (replicas > 0 and low == 0):
        keda_replicas = idle if idle is not None else low
        keda = (f"deactivates the target to {keda_replicas} once cooldownPeriod "
                f"{spec.cooldown_period} s has passed since a trigger was last active")  # fmt: skip
    elif idle is None and replicas < low:
        keda_replicas = low
        keda = f"sets minReplicaCount: {replicas} -> {low}"
    else:
        keda = "nothing: not active, the target is already at its floor"
    start = replicas if keda_replicas is None or not active else keda_replicas
    per, hpa_replicas = _hpa(spec, metrics, start, tolerance)
    if not active and keda_replicas is not None and keda_replicas < replicas:
        next_replicas = hpa_replicas if hpa_replicas is not None else replicas
        notes.append(f"until the cooldown ends the HPA holds {next_replicas}; then "
                     f"{keda_replicas}")  # fmt: skip
        settles = keda_replicas
    else:
        next_replicas = hpa_replicas if hpa_replicas is not None else start
        settles = next_replicas
        for _ in range(64):
            if settles == 0:
                break
            _, again = _hpa(spec, metrics, settles, tolerance)
            if again is None or again == settles:
                break
            settles = again
    if replicas == 0 and keda_replicas is None:
        notes.append("the HPA does not act on a target at 0 replicas; KEDA activates it")
    if any(m.metric_type == "Value" for m in metrics if not m.error) and settles != next_replicas:
        notes.append(
            "a Value metric multiplies the replicas by value / target each sync while the "
            "queue stays: it settles at the bounds or within the tolerance"
        )
    return ObjectDecision(
        replicas=replicas, active=active, error=error, hpa_min=spec.hpa_min,
        hpa_max=spec.hpa_max, per_metric=per, hpa_replicas=hpa_replicas, keda=keda,
        keda_replicas=keda_replicas, next_replicas=next_replicas, settles_at=settles,
        notes=tuple(notes), metrics=tuple(metrics),
    )  # fmt: skip
