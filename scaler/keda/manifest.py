"""Reading a ScaledJob manifest as KEDA reads it: settings, triggers and ``...FromEnv``.

KEDA forwards a trigger's metadata to an external scaler with every key that ends in
``FromEnv`` replaced by the value of that variable in the Job template's container
(``envSourceContainerName``, or the first container); a variable that is missing or
empty drops the key (``parseExternalScalerMetadata``). The container's environment
is resolved by :mod:`scaler.keda.env`, KEDA's ``ResolveContainerEnv`` restated. Values
in Secrets and ConfigMaps come from a ``lookup`` (the cluster) or ``env`` (``--env``);
each one neither gives is reported in :attr:`ScaledJob.unresolved`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scaler.documents import Doc, mapping, mappings, path, text
from scaler.keda.env import (
    UNKNOWN,
    EnvError,
    Environment,
    Lookup,
    Unknown,
    choose_container,
    resolve,
)
from scaler.keda.scaledjob import CALCULATIONS, STRATEGIES, ScaledJobSpec, ScalingStrategy

DEFAULT_POLLING_INTERVAL = 30
EXTERNAL_TYPES = ("external", "external-push")


class ManifestError(ValueError):
    """The ScaledJob manifest cannot be read; the message says why."""


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of a ScaledJob, with metadata as KEDA forwards it to a scaler."""

    type: str
    metadata: Mapping[str, str]
    name: str = ""
    #: What became of its authenticationRef (explain's note); "" without one.
    auth_note: str = ""
    #: The HPA's target type for a ScaledObject's trigger (``metricType``);
    #: a ScaledJob ignores it.
    metric_type: str = "AverageValue"

    @property
    def scaler_address(self) -> str:
        return self.metadata.get("scalerAddress", "")

    @property
    def external(self) -> bool:
        """Served by an external scaler; other types are KEDA's own built-in scalers."""
        return self.type in EXTERNAL_TYPES


@dataclass(frozen=True)
class Unresolved:
    """A ``...FromEnv`` key whose variable the manifest alone cannot resolve."""

    trigger: int
    key: str
    variable: str
    source: str  # "Secret NAME key K", "envFrom ...", or "not defined"

    def __str__(self) -> str:
        where = (
            "is not defined in the container, so KEDA drops the key"
            if self.source == "not defined"
            else f"comes from {self.source}: pass --env {self.variable}=VALUE"
        )
        return f"trigger {self.trigger}: {self.key} names variable {self.variable}, which {where}"


@dataclass(frozen=True)
class ScaledJob:
    name: str
    namespace: str
    polling_interval: int
    spec: ScaledJobSpec
    triggers: tuple[TriggerSpec, ...]
    unresolved: tuple[Unresolved, ...] = ()


def _int(value: object, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where} must be a whole number, not {value!r}")
    if minimum is not None and value < minimum:
        raise ManifestError(f"{where} must be >= {minimum}, not {value}")
    if not -(2**31) <= value < 2**31:
        raise ManifestError(f"{where} {value} does not fit the CRD's int32")
    return value


def _optional_int(value: object, where: str) -> int | None:
    return None if value is None else _int(value, where)


def from_manifest(
    doc: object, *, env: Mapping[str, str] | None = None, lookup: Lookup | None = None
) -> ScaledJob:
    """A :class:`ScaledJob` from a parsed manifest; ``lookup`` reads the Secrets and
    ConfigMaps KEDA would read (none: a manifest alone), ``env`` supplies values for
    those it cannot (and overrides the manifest's own)."""
    if not isinstance(doc, dict):
        raise ManifestError("the manifest is not a YAML mapping")
    if doc.get("kind") != "ScaledJob":
        raise ManifestError(f"kind is {doc.get('kind')!r}: explain reads ScaledJobs")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError("spec is missing")
    meta = mapping(doc.get("metadata"))
    raw = mapping(spec.get("scalingStrategy"))
    if not isinstance(raw, dict):
        raise ManifestError("spec.scalingStrategy must be a mapping")
    name = raw.get("strategy") or "default"
    if name not in STRATEGIES:  # the CRD's enum
        raise ManifestError(f"scalingStrategy.strategy {name!r} must be one of {STRATEGIES}")
    calculation = raw.get("multipleScalersCalculation") or ""
    if calculation and calculation not in CALCULATIONS:
        raise ManifestError(
            f"scalingStrategy.multipleScalersCalculation {calculation!r} must be one of "
            f"{CALCULATIONS}"
        )
    conditions = raw.get("pendingPodConditions") or []
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        raise ManifestError("scalingStrategy.pendingPodConditions must be a list of strings")
    strategy = ScalingStrategy(
        strategy=name,
        custom_scaling_queue_length_deduction=_optional_int(
            raw.get("customScalingQueueLengthDeduction"), "customScalingQueueLengthDeduction"
        ),
        custom_scaling_running_job_percentage=str(
            raw.get("customScalingRunningJobPercentage") or ""
        ),
        pending_pod_conditions=tuple(conditions),
        multiple_scalers_calculation=calculation,
    )
    job_spec = ScaledJobSpec(
        min_replica_count=_optional_int(spec.get("minReplicaCount"), "minReplicaCount"),
        max_replica_count=_optional_int(spec.get("maxReplicaCount"), "maxReplicaCount"),
        scaling_strategy=strategy,
    )
    polling = spec.get("pollingInterval")
    polling = DEFAULT_POLLING_INTERVAL if polling is None else _int(polling, "pollingInterval", 1)

    environment = container_environment(spec, env or {}, lookup)
    triggers, unresolved = read_triggers(spec, environment)
    return ScaledJob(
        name=str(meta.get("name", "scaledjob")),
        namespace=str(meta.get("namespace", "default")),
        polling_interval=polling,
        spec=job_spec,
        triggers=triggers,
        unresolved=unresolved,
    )


def read_triggers(
    spec: Doc, environment: Environment
) -> tuple[tuple[TriggerSpec, ...], tuple[Unresolved, ...]]:
    """``spec.triggers`` with metadata as KEDA forwards it: each ``...FromEnv`` key
    replaced by the container's value (dropped when empty), and each one the
    environment cannot resolve reported."""
    container_env, from_sources = environment.values, environment.unknown
    triggers = []
    unresolved = []
    raw_triggers = spec.get("triggers")
    if not isinstance(raw_triggers, list) or not raw_triggers:
        raise ManifestError("spec.triggers must list at least one trigger")
    for i, trigger in enumerate(raw_triggers):
        if not isinstance(trigger, dict) or not isinstance(trigger.get("metadata"), dict):
            raise ManifestError(f"spec.triggers[{i}] needs a metadata mapping")
        metadata: dict[str, str] = {}
        for key, value in trigger["metadata"].items():
            text = "" if value is None else str(value)
            if not key.endswith("FromEnv"):
                metadata[key] = text
            elif resolved := container_env.get(text, ""):
                metadata[key] = resolved
            elif text in from_sources or text not in container_env:
                source = from_sources.get(text) or from_sources.get("") or "not defined"
                unresolved.append(Unresolved(i, key, text, source))
        triggers.append(
            TriggerSpec(
                type=str(trigger.get("type", "")),
                metadata=metadata,
                name=str(trigger.get("name", "")),
                metric_type=str(trigger.get("metricType") or "AverageValue"),
            )
        )
    return tuple(triggers), tuple(unresolved)


def job_containers(spec: Doc) -> list[Doc]:
    """The Job template's containers (none when the manifest has no template)."""
    return mappings(path(spec, "jobTargetRef", "template", "spec", "containers"))


def container_environment(
    spec: Doc,
    supplied: Mapping[str, str],
    lookup: Lookup | None = None,
    *,
    containers: list[Doc] | None = None,
    source: str | None = None,
    what: str = "the Job container",
) -> Environment:
    """What KEDA resolves for the container it reads (the Job template's, or
    ``containers`` with ``source`` naming one: a ScaledObject's scale target);
    ``supplied`` (``--env``) fills variables from objects ``lookup`` cannot read, and
    overrides the rest."""
    if containers is None:
        containers = job_containers(spec)
        source = text(spec.get("envSourceContainerName"))
    if not containers:
        return Environment(values=dict(supplied))
    try:
        container = choose_container(containers, source)
        environment = resolve(container, lookup or _unknown, given=supplied)
    except EnvError as exc:
        raise ManifestError(f"KEDA cannot resolve {what}'s environment: {exc}") from None
    environment.values.update(supplied)
    for name in supplied:
        environment.unknown.pop(name, None)
    return environment


def _unknown(kind: str, name: str) -> Unknown:
    """A manifest alone: no Secret or ConfigMap can be read."""
    return UNKNOWN
