"""A model of KEDA's ScaledJob loop (DESIGN §2 and §3): how many Jobs one poll creates.

Per poll KEDA calls, for each trigger, GetMetricSpec, then GetMetrics for the first
spec's metric name, then IsActive. A trigger that fails any of them is skipped for
that poll. For each answering trigger:

    queueLength = sum of the values for that metric name (metricValueFloat if > 0,
                  else metricValue; NaN, Inf and negatives count 0)
    maxScale    = min(queueLength / target, maxReplicaCount)       (target > 0)

The active triggers are combined by ``multipleScalersCalculation`` (max by default,
min, avg, sum) and the result rounded up to whole Jobs and capped at R =
maxReplicaCount (100 when unset). With ``running`` unfinished Jobs, ``pending`` of
them not yet running, and ``r = running - minReplicaCount``, the scaling strategy
decides how many Jobs to create:

    default   maxScale - r
    custom    min(maxScale - deduction - trunc(r * runningJobPercentage), R)
              (without customScalingRunningJobPercentage KEDA uses default)
    accurate  R - r            if maxScale + r - pending > R
              maxScale - pending otherwise
    eager     min(R - r - pending, maxScale)

clamped at 0, and only when at least one trigger is active.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STRATEGIES = ("default", "custom", "accurate", "eager")
CALCULATIONS = ("max", "min", "avg", "sum")
DEFAULT_MAX_REPLICAS = 100
DEFAULT_POLLING_INTERVAL = 30


class ManifestError(ValueError):
    """The ScaledJob manifest cannot be modelled; the message says why."""


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of a ScaledJob as KEDA forwards it to an external scaler."""

    type: str
    metadata: Mapping[str, str]
    name: str = ""

    @property
    def scaler_address(self) -> str:
        return self.metadata.get("scalerAddress", "")


@dataclass(frozen=True)
class ScaledJobSpec:
    name: str = "scaledjob"
    namespace: str = "default"
    polling_interval: float = DEFAULT_POLLING_INTERVAL
    min_replica_count: int = 0
    max_replica_count: int = DEFAULT_MAX_REPLICAS
    strategy: str = "default"
    queue_length_deduction: int | None = None
    running_job_percentage: float | None = None
    multiple_scalers_calculation: str = "max"
    triggers: tuple[TriggerSpec, ...] = ()

    @property
    def effective_strategy(self) -> str:
        """KEDA falls back to default when custom lacks a usable percentage."""
        if self.strategy == "custom" and self.running_job_percentage is None:
            return "default"
        return self.strategy


@dataclass(frozen=True)
class TriggerReading:
    """What one trigger answered in one poll (or why it did not)."""

    metric_name: str = ""
    values: tuple[float, ...] = ()  # every value returned for the metric name
    target: float = 0.0
    active: bool = False
    error: str | None = None

    @property
    def queue_length(self) -> float:
        return sum(v if math.isfinite(v) and v > 0 else 0.0 for v in self.values)

    def max_scale(self, max_replicas: int) -> float:
        if self.target <= 0:
            return 0.0
        return min(self.queue_length / self.target, float(max_replicas))


def keda_value(metric_value: int, metric_value_float: float) -> float:
    """The value KEDA reads from a MetricValue: the float if > 0, else the int."""
    value = metric_value_float if metric_value_float > 0 else float(metric_value)
    return value if math.isfinite(value) and value > 0 else 0.0


@dataclass(frozen=True)
class Decision:
    active: bool
    max_scale: int
    running: int
    pending: int
    jobs: int  # what the manifest's strategy creates
    by_strategy: dict[str, int] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


def _combine(values: Sequence[float], how: str) -> float:
    if not values:
        return 0.0
    if how == "min":
        return min(values)
    if how == "avg":
        return sum(values) / len(values)
    if how == "sum":
        return sum(values)
    return max(values)


def strategy_jobs(
    strategy: str, spec: ScaledJobSpec, max_scale: int, running: int, pending: int
) -> int:
    """Jobs one strategy creates for an active poll (before the clamp at 0)."""
    big_r = spec.max_replica_count
    r = running - spec.min_replica_count
    if strategy == "custom" and spec.running_job_percentage is not None:
        deduction = spec.queue_length_deduction or 0
        return min(max_scale - deduction - int(r * spec.running_job_percentage), big_r)
    if strategy == "accurate":
        if max_scale + r - pending > big_r:
            return big_r - r
        return max_scale - pending
    if strategy == "eager":
        return min(big_r - r - pending, max_scale)
    return max_scale - r


def decide(
    spec: ScaledJobSpec, readings: Sequence[TriggerReading], *, running: int, pending: int = 0
) -> Decision:
    """How many Jobs KEDA creates in this poll, for every strategy, and why."""
    if running < 0 or pending < 0 or pending > running:
        raise ValueError("need 0 <= pending <= running")
    reasons: list[str] = []
    answered = [r for r in readings if r.error is None]
    for r in readings:
        if r.error is not None:
            reasons.append(f"trigger {r.metric_name or '?'} skipped this poll: {r.error}")
    active = [r for r in answered if r.active]
    scales = [r.max_scale(spec.max_replica_count) for r in active]
    max_scale = min(
        math.ceil(_combine(scales, spec.multiple_scalers_calculation)), spec.max_replica_count
    )
    for r in answered:
        if r.target <= 0:
            reasons.append(f"{r.metric_name}: target {r.target:g} is not > 0, so no Jobs")
        state = "active" if r.active else "not active"
        reasons.append(
            f"{r.metric_name}: queue {r.queue_length:g} / target {r.target:g} = "
            f"{r.max_scale(spec.max_replica_count):g} Jobs wanted, {state}"
        )
    if len(active) > 1:
        reasons.append(
            f"{len(active)} active triggers combined by {spec.multiple_scalers_calculation}: "
            f"{max_scale}"
        )
    # strategy_jobs("custom") without a percentage is default's formula, as in KEDA.
    by_strategy = {
        s: max(0, strategy_jobs(s, spec, max_scale, running, pending)) if active else 0
        for s in STRATEGIES
    }
    if spec.strategy != spec.effective_strategy:
        reasons.append(
            "custom strategy without customScalingRunningJobPercentage: KEDA uses default"
        )
    if not active:
        reasons.append("no trigger is active: KEDA creates no Jobs")
    return Decision(
        active=bool(active),
        max_scale=max_scale if active else 0,
        running=running,
        pending=pending,
        jobs=by_strategy[spec.strategy],
        by_strategy=by_strategy,
        reasons=tuple(reasons),
    )


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ManifestError(f"{where} must be a whole number >= {minimum}, not {value!r}")
    return value


def from_manifest(doc: Any, *, env: Mapping[str, str] | None = None) -> ScaledJobSpec:
    """A ScaledJobSpec from a parsed ScaledJob manifest.

    ``...FromEnv`` metadata values are resolved as KEDA does, from the env of the Job
    template's container (``envSourceContainerName`` or the first one): literal
    ``value``s, then ``env`` for values that come from Secrets or ConfigMaps. A
    variable that is missing or empty drops the key, as in KEDA.
    """
    if not isinstance(doc, dict):
        raise ManifestError("the manifest is not a YAML mapping")
    if doc.get("kind") != "ScaledJob":
        raise ManifestError(f"kind is {doc.get('kind')!r}: explain models ScaledJobs")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError("spec is missing")
    meta = doc.get("metadata") or {}
    strategy = spec.get("scalingStrategy") or {}
    name = strategy.get("strategy", "default")
    if name not in STRATEGIES:
        raise ManifestError(f"scalingStrategy.strategy {name!r} must be one of {STRATEGIES}")
    calculation = strategy.get("multipleScalersCalculation", "max")
    if calculation not in CALCULATIONS:
        raise ManifestError(
            f"scalingStrategy.multipleScalersCalculation {calculation!r} must be one of "
            f"{CALCULATIONS}"
        )
    percentage = None
    if (text := strategy.get("customScalingRunningJobPercentage")) not in (None, ""):
        try:
            percentage = float(text)
        except ValueError:
            percentage = None  # KEDA logs it and falls back to default
    deduction = strategy.get("customScalingQueueLengthDeduction")
    if deduction is not None:
        deduction = _int(deduction, "customScalingQueueLengthDeduction")
    max_replicas = spec.get("maxReplicaCount")
    max_replicas = (
        DEFAULT_MAX_REPLICAS if max_replicas is None else _int(max_replicas, "maxReplicaCount")
    )
    min_replicas = _int(spec.get("minReplicaCount", 0) or 0, "minReplicaCount")
    min_replicas = min(min_replicas, max_replicas)  # KEDA caps min at max
    polling = spec.get("pollingInterval", DEFAULT_POLLING_INTERVAL)
    polling = _int(polling, "pollingInterval", minimum=1)

    container_env = _container_env(spec, env or {})
    triggers = []
    raw_triggers = spec.get("triggers")
    if not isinstance(raw_triggers, list) or not raw_triggers:
        raise ManifestError("spec.triggers must list at least one trigger")
    for i, trigger in enumerate(raw_triggers):
        if not isinstance(trigger, dict) or not isinstance(trigger.get("metadata"), dict):
            raise ManifestError(f"spec.triggers[{i}] needs a metadata mapping")
        metadata: dict[str, str] = {}
        for key, value in trigger["metadata"].items():
            text = "" if value is None else str(value)
            if key.endswith("FromEnv"):
                resolved = container_env.get(text, "")
                if resolved:
                    metadata[key] = resolved
            else:
                metadata[key] = text
        triggers.append(
            TriggerSpec(
                type=str(trigger.get("type", "")),
                metadata=metadata,
                name=str(trigger.get("name", "")),
            )
        )
    return ScaledJobSpec(
        name=str(meta.get("name", "scaledjob")),
        namespace=str(meta.get("namespace", "default")),
        polling_interval=polling,
        min_replica_count=min_replicas,
        max_replica_count=max_replicas,
        strategy=name,
        queue_length_deduction=deduction,
        running_job_percentage=percentage,
        multiple_scalers_calculation=calculation,
        triggers=tuple(triggers),
    )


def _container_env(spec: dict[str, Any], extra: Mapping[str, str]) -> dict[str, str]:
    try:
        containers = spec["jobTargetRef"]["template"]["spec"]["containers"]
    except (KeyError, TypeError):
        return dict(extra)
    wanted = spec.get("envSourceContainerName")
    container = next((c for c in containers if c.get("name") == wanted), None) if wanted else None
    container = container or (containers[0] if containers else {})
    out = {e["name"]: str(e["value"]) for e in container.get("env", []) or [] if "value" in e}
    out.update(extra)
    return out
