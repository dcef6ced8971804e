"""KEDA v2.21.0's ScaledJob arithmetic: how many Jobs one poll creates (DESIGN §3).

Pure functions, no I/O. Each one restates a named piece of KEDA's Go code, and
``tests/keda`` checks the whole against KEDA's own functions on random scenarios
(``make parity``), so the names below follow KEDA's:

- :func:`metric_value`, :func:`metric_target`: ``externalScaler`` turning our
  answers into milli-quantities (``GenerateMetricInMili``, ``GetMetricTargetMili``),
  read back with ``Quantity.AsApproximateFloat64``.
- :func:`scaler_metrics`: the loop of ``scale_handler.getScaledJobMetrics``, one
  entry per metric spec of a trigger, built by
  :func:`calculate_queue_length_and_max_value`.
- :func:`is_scaled_job_active`: ``scaledjob.IsScaledJobActive``
  (``multipleScalersCalculation``, min > 0 makes the ScaledJob active).
- :func:`effective_max_scale`: ``executor.getScalingDecision`` and the strategies'
  ``GetEffectiveMaxScale``.
- :func:`jobs_to_create`: ``RequestJobScale`` / ``createJobs``.
- :func:`count_jobs`: ``getRunningJobCount`` / ``getPendingJobCount``.

Go's integer conversions are kept: ``int64(math.Ceil(x))`` of a value out of range is
``math.MinInt64`` on amd64, and int64 arithmetic wraps.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

STRATEGIES = ("default", "custom", "accurate", "eager")
CALCULATIONS = ("max", "min", "avg", "sum")
DEFAULT_MAX_REPLICAS = 100  # defaultScaledJobMaxReplicaCount
DEFAULT_MIN_REPLICAS = 0  # defaultScaledJobMinReplicaCount

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _wrap(value: int) -> int:
    """int64 arithmetic: wraps around as Go's does."""
    return (value - _INT64_MIN) % 2**64 + _INT64_MIN


def _go_int64(value: float) -> int:
    """Go's ``int64(x)`` for a float on amd64: truncation, or MinInt64 out of range."""
    if not math.isfinite(value) or not (_INT64_MIN <= value < 2.0**63):
        return _INT64_MIN
    return int(value)


def _ceil_to_int64(value: float) -> int:
    return _go_int64(math.ceil(value)) if math.isfinite(value) else _INT64_MIN


# --- metric values and targets as KEDA stores them ----------------------------


def milli(value: float) -> float:
    """``quantityFromFloat64`` then ``AsApproximateFloat64``: NaN, Inf and negatives
    are 0; otherwise ``%.3f`` read back as digits x 10^-3."""
    if not math.isfinite(value) or value < 0:
        return 0.0
    text = f"{value:.3f}"
    if float(text) == 0:
        return 0.0
    try:
        base = float(int(text.replace(".", "")))
    except OverflowError:
        # Go's big.Float.Float64() of the digits saturates to +Inf past float64
        # (a value above about 1.8e305): so does AsApproximateFloat64.
        return math.inf
    return base * 0.001


def metric_value(metric_value_int: int, metric_value_float: float) -> float:
    """The value KEDA takes from one MetricValue: the float if > 0, else the int."""
    value = metric_value_float if metric_value_float > 0 else float(metric_value_int)
    return milli(value)


def metric_target(target_size: int, target_size_float: float) -> float:
    """The target KEDA takes from one MetricSpec: the float (milli) if > 0, else the int."""
    if target_size_float > 0:
        return milli(target_size_float)
    return float(target_size)


# --- one poll's answers ---------------------------------------------------------


@dataclass(frozen=True)
class SpecReading:
    """One metric spec of a trigger and what KEDA read for it in one poll.

    ``values`` are every value GetMetrics returned (KEDA renames them all to the
    metric it asked for), already through :func:`metric_value`; ``target`` is through
    :func:`metric_target`. ``error`` is set when GetMetrics or IsActive failed even
    after KEDA's one retry.
    """

    metric_name: str
    target: float
    values: tuple[float, ...] = ()
    active: bool = False
    error: str | None = None

    @property
    def queue_length(self) -> float:
        total = 0.0
        for value in self.values:  # in order, as KEDA adds them
            total += value
        return total


@dataclass(frozen=True)
class TriggerReading:
    """One trigger's poll: its specs, or why GetMetricSpec gave none.

    KEDA drops a trigger whose GetMetricSpec fails (or returns no spec) silently:
    a line in the operator's log, no event, no error condition.
    """

    specs: tuple[SpecReading, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ScalerMetrics:
    """``scaledjob.ScalerMetrics``: one entry per metric spec that answered."""

    queue_length: float
    max_value: float
    active: bool


def target_average_value(targets: Sequence[float]) -> float:
    """``getTargetAverageValue``: the mean of every spec's target (0 without specs)."""
    total = 0.0
    for target in targets:
        total += target
    return total / len(targets) if targets else 0.0


def calculate_queue_length_and_max_value(
    values_for_first_spec: Sequence[float], targets: Sequence[float], max_replicas: int
) -> tuple[float, float, float]:
    """``scaledjob.CalculateQueueLengthAndMaxValue``: (queueLength, maxValue, target).

    Only values named like the trigger's *first* spec count, so a second spec with
    another metric name contributes a queue length of 0."""
    queue_length = 0.0
    for value in values_for_first_spec:
        queue_length += value
    target = target_average_value(targets)
    max_value = 0.0
    if target != 0:
        max_value = min(queue_length / target, float(max_replicas))
    return queue_length, max_value, target


def scaler_metrics(reading: TriggerReading, max_replicas: int) -> tuple[list[ScalerMetrics], bool]:
    """The loop of ``getScaledJobMetrics`` for one trigger: (entries, isError).

    The trigger's activity is sticky across its specs: once one spec answers active,
    every later spec's entry is active too."""
    if reading.error is not None or not reading.specs:
        return [], False
    out: list[ScalerMetrics] = []
    is_error = False
    active = False
    first = reading.specs[0].metric_name
    targets = [s.target for s in reading.specs]
    for spec in reading.specs:
        if spec.error is not None:
            is_error = True
            continue
        active = active or spec.active
        values = spec.values if spec.metric_name == first else ()
        queue_length, max_value, _ = calculate_queue_length_and_max_value(
            values, targets, max_replicas
        )
        out.append(ScalerMetrics(queue_length, max_value, active))
    return out, is_error


def is_scaled_job_active(
    metrics: Sequence[ScalerMetrics], calculation: str, min_replicas: int, max_replicas: int
) -> tuple[bool, int, int, float]:
    """``scaledjob.IsScaledJobActive``: (isActive, scaleTo, maxScale, maxValue).

    ``max`` and ``min`` pick one active entry by queue length and take its maxValue;
    ``min`` replaces a current queue length of 0 with the next active entry."""
    queue_length = 0.0
    max_value = 0.0
    active = False
    if calculation == "min":
        for m in metrics:
            if (queue_length == 0 or m.queue_length < queue_length) and m.active:
                queue_length, max_value, active = m.queue_length, m.max_value, m.active
    elif calculation in ("avg", "sum"):
        q_sum = v_sum = 0.0
        count = 0
        for m in metrics:
            if m.active:
                q_sum += m.queue_length
                v_sum += m.max_value
                active = True
                count += 1
        if calculation == "sum":
            queue_length, max_value = q_sum, v_sum
        elif count:
            queue_length, max_value = q_sum / count, v_sum / count
    else:  # max, and anything KEDA does not know
        for m in metrics:
            if m.queue_length > queue_length and m.active:
                queue_length, max_value, active = m.queue_length, m.max_value, m.active
    if min_replicas > 0:
        active = True
    max_value = min(max_value, float(max_replicas))
    return active, _ceil_to_int64(queue_length), _ceil_to_int64(max_value), max_value


# --- the ScaledJob's settings ---------------------------------------------------

_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9](?:_?[0-9])*)?\.?[0-9]*(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


def parse_go_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``, or None where Go returns an error.

    Decimal and special forms as Go spells them; hexadecimal floats are read with
    ``float.fromhex``. Out of range (``1e400``) is an error in Go, so None here."""
    body = text.lstrip("+-")
    if body.lower().startswith("0x"):
        if "p" not in body.lower():
            return None  # Go: a hexadecimal mantissa requires a 'p' exponent
        try:
            value = float.fromhex(text.replace("_", ""))
        except (ValueError, OverflowError):
            return None
        return value if math.isfinite(value) else None
    if not text or "_" in text or not _GO_FLOAT.fullmatch(text):
        return None
    if not any(c.isdigit() for c in body) and body.lower() not in ("inf", "infinity", "nan"):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isinf(value) and body.lower() not in ("inf", "infinity"):
        return None  # ErrRange
    return value


@dataclass(frozen=True)
class ScalingStrategy:
    """``spec.scalingStrategy`` as the CRD holds it (the percentage is a string)."""

    strategy: str = "default"
    custom_scaling_queue_length_deduction: int | None = None
    custom_scaling_running_job_percentage: str = ""
    pending_pod_conditions: tuple[str, ...] = ()
    multiple_scalers_calculation: str = ""

    @property
    def percentage(self) -> float | None:
        return parse_go_float(self.custom_scaling_running_job_percentage)

    @property
    def effective(self) -> str:
        """The strategy KEDA runs: custom without a parsable percentage is default."""
        if self.strategy == "custom":
            return "custom" if self.percentage is not None else "default"
        return self.strategy if self.strategy in STRATEGIES else "default"

    @property
    def calculation(self) -> str:
        return self.multiple_scalers_calculation or "max"


@dataclass(frozen=True)
class ScaledJobSpec:
    """The parts of a ScaledJob's spec that KEDA's arithmetic reads."""

    min_replica_count: int | None = None
    max_replica_count: int | None = None
    scaling_strategy: ScalingStrategy = field(default_factory=ScalingStrategy)

    def min_replicas(self) -> int:
        """``ScaledJob.MinReplicaCount()``: capped at maxReplicaCount."""
        lo, hi = self.min_replica_count, self.max_replica_count
        if lo is not None:
            if hi is not None and lo > hi:
                return hi
            return lo
        return DEFAULT_MIN_REPLICAS

    def max_replicas(self) -> int:
        """``ScaledJob.MaxReplicaCount()``: maxReplicaCount - min (100 when unset)."""
        lo, hi = self.min_replica_count, self.max_replica_count
        if hi is not None:
            if lo is not None and lo > hi:
                return hi
            return hi - self.min_replicas()
        return DEFAULT_MAX_REPLICAS


def effective_max_scale(
    strategy: ScalingStrategy,
    *,
    max_scale: int,
    running: int,
    pending: int,
    max_replicas: int,
    scale_to: int,
) -> tuple[int, int]:
    """A strategy's ``GetEffectiveMaxScale`` (``running`` is already minus min)."""
    name = strategy.effective
    if name == "custom":
        deduction = strategy.custom_scaling_queue_length_deduction or 0
        percentage = strategy.percentage or 0.0
        result = _wrap(max_scale - deduction - _go_int64(float(running) * percentage))
        return min(result, max_replicas), scale_to
    if name == "accurate":
        if _wrap(max_scale + running - pending) > max_replicas:
            return _wrap(max_replicas - running), scale_to
        return _wrap(max_scale - pending), scale_to
    if name == "eager":
        return min(_wrap(max_replicas - running - pending), max_scale), max_replicas
    return _wrap(max_scale - running), scale_to


def scaling_decision(
    spec: ScaledJobSpec, *, running: int, pending: int, scale_to: int, max_scale: int
) -> tuple[int, int]:
    """``executor.getScalingDecision``: (effectiveMaxScale, scaleTo).

    Below minReplicaCount KEDA only tops up to it; otherwise the strategy decides,
    with the running count less the minimum."""
    minimum = spec.min_replicas()
    if running < minimum:
        return minimum - running, minimum - running
    return effective_max_scale(
        spec.scaling_strategy,
        max_scale=max_scale,
        running=_wrap(running - minimum),
        pending=pending,
        max_replicas=spec.max_replicas(),
        scale_to=scale_to,
    )


def jobs_to_create(active: bool, scale_to: int, effective: int) -> int:
    """``RequestJobScale`` and ``createJobs``: min(scaleTo, effective max), if active."""
    if not active or effective <= 0:
        return 0
    return max(0, min(scale_to, effective))


# --- Jobs as KEDA counts them ------------------------------------------------------


@dataclass(frozen=True)
class PodState:
    phase: str = "Pending"
    conditions: Mapping[str, str] = field(default_factory=dict)  # type -> "True"/"False"


@dataclass(frozen=True)
class JobState:
    conditions: Mapping[str, str] = field(default_factory=dict)  # type -> status
    pods: tuple[PodState, ...] = ()

    @property
    def finished(self) -> bool:
        return any(t in ("Complete", "Failed") and s == "True" for t, s in self.conditions.items())


def _pod_fulfils(pod: PodState, wanted: Sequence[str]) -> bool:
    # KEDA compares the number of distinct fulfilled conditions with the length of
    # the list, so a condition listed twice can never be fulfilled.
    fulfilled = {t for t, s in pod.conditions.items() if t in wanted and s == "True"}
    return len(fulfilled) == len(wanted)


def count_jobs(
    jobs: Sequence[JobState], pending_pod_conditions: Sequence[str] = ()
) -> tuple[int, int]:
    """(running, pending) as ``getRunningJobCount`` and ``getPendingJobCount`` count.

    Running: not finished (no true Complete or Failed condition). Pending: running,
    and no Pod is Running or Succeeded, or, with ``pendingPodConditions``, no Pod
    has all of them true."""
    running = pending = 0
    for job in jobs:
        if job.finished:
            continue
        running += 1
        if pending_pod_conditions:
            started = any(_pod_fulfils(p, pending_pod_conditions) for p in job.pods)
        else:
            started = any(p.phase in ("Running", "Succeeded") for p in job.pods)
        pending += not started
    return running, pending


# --- one whole poll -------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What KEDA does in one poll, with the numbers on the way."""

    active: bool
    is_error: bool
    scale_to: int
    max_scale: int
    effective_max_scale: int
    jobs: int
    running: int
    pending: int
    min_replicas: int
    max_replicas: int
    by_strategy: dict[str, int]
    metrics: tuple[ScalerMetrics, ...]

    @property
    def ready(self) -> str:
        """The ScaledJob's Ready condition after the poll, as ``status/reason``."""
        if not self.is_error:
            return "True/ScaledJobReady"
        return "Unknown/PartialTriggerError" if self.active else "False/TriggerError"


def decide(
    spec: ScaledJobSpec,
    readings: Sequence[TriggerReading],
    *,
    running: int,
    pending: int = 0,
) -> Decision:
    """How many Jobs KEDA creates in this poll (and what each strategy would create).

    ``pending`` can exceed ``running``, as in KEDA: it lists the Jobs once for each
    count, and a Job created between the two listings (by the ScaledJob's other scale
    loop while KEDA restarts it) is counted pending but not running."""
    if running < 0 or pending < 0:
        raise ValueError("need running >= 0 and pending >= 0")
    max_replicas = spec.max_replicas()
    metrics: list[ScalerMetrics] = []
    is_error = False
    for reading in readings:
        entries, failed = scaler_metrics(reading, max_replicas)
        metrics.extend(entries)
        is_error = is_error or failed
    strategy = spec.scaling_strategy
    active, scale_to, max_scale, _ = is_scaled_job_active(
        metrics, strategy.calculation, spec.min_replicas(), max_replicas
    )

    def jobs_for(candidate: ScaledJobSpec) -> tuple[int, int]:
        effective, to = scaling_decision(
            candidate, running=running, pending=pending, scale_to=scale_to, max_scale=max_scale
        )
        return max(effective, 0), jobs_to_create(active, to, effective)

    effective, jobs = jobs_for(spec)
    by_strategy = {
        name: jobs_for(
            dataclasses.replace(spec, scaling_strategy=dataclasses.replace(strategy, strategy=name))
        )[1]
        for name in STRATEGIES
    }
    return Decision(
        active=active,
        is_error=is_error,
        scale_to=scale_to,
        max_scale=max_scale,
        effective_max_scale=effective,
        jobs=jobs,
        running=running,
        pending=pending,
        min_replicas=spec.min_replicas(),
        max_replicas=max_replicas,
        by_strategy=by_strategy,
        metrics=tuple(metrics),
    )
