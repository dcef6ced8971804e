"""KEDA's ScaledJob arithmetic (DESIGN §3), table-driven for every strategy."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scaler.kedamodel import (
    ManifestError,
    ScaledJobSpec,
    TriggerReading,
    decide,
    from_manifest,
    keda_value,
)


def one(queue: float, target: float = 1, active: bool = True) -> list[TriggerReading]:
    return [TriggerReading("redis-jobs", (queue,), target, active)]


CUSTOM = {"strategy": "custom", "queue_length_deduction": 1, "running_job_percentage": 0.5}

# spec overrides, readings, running, pending, expected {strategy: jobs}
CASES: list[tuple[str, dict[str, Any], list[TriggerReading], int, int, dict[str, int]]] = [
    ("plain", {}, one(10), 3, 0, {"default": 7, "accurate": 10, "eager": 10}),
    ("custom params", CUSTOM, one(10), 3, 0, {"custom": 8}),  # min(10 - 1 - int(1.5), 100)
    ("custom without percentage = default", {"strategy": "custom"}, one(10), 3, 0, {"custom": 7}),
    ("custom without deduction", {"strategy": "custom", "running_job_percentage": 1.0}, one(10), 3, 0, {"custom": 7}),
    ("max unset is 100", {}, one(1000), 0, 0, {"default": 100, "accurate": 100, "eager": 100}),
    ("accurate at the cap", {}, one(1000), 50, 0, {"default": 50, "accurate": 50, "eager": 50}),
    ("pending jobs", {}, one(5), 4, 2, {"default": 1, "accurate": 3, "eager": 5}),
    ("accurate over max", {"max_replica_count": 10}, one(9), 4, 1, {"accurate": 6, "eager": 5, "default": 5}),
    ("min > 0 lets min Jobs run on top", {"min_replica_count": 2}, one(3), 2, 0, {"default": 3, "accurate": 3, "eager": 3}),
    ("rounded up to whole Jobs", {}, one(7, target=5), 0, 0, {"default": 2}),
    ("target 0 makes no Jobs", {}, one(7, target=0), 0, 0, {"default": 0, "accurate": 0, "eager": 0}),
    ("inactive makes no Jobs", {}, one(7, active=False), 0, 0, {"default": 0, "custom": 0, "accurate": 0, "eager": 0}),
    ("clamped at 0", {}, one(3), 10, 0, {"default": 0, "accurate": 3}),
    ("cap at maxReplicaCount", {"max_replica_count": 4}, one(50), 0, 0, {"default": 4, "accurate": 4, "eager": 4}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "overrides", "readings", "running", "pending", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_strategies(
    label: str,
    overrides: dict[str, Any],
    readings: list[TriggerReading],
    running: int,
    pending: int,
    expected: dict[str, int],
) -> None:
    spec = ScaledJobSpec(**overrides)
    decision = decide(spec, readings, running=running, pending=pending)
    for strategy, jobs in expected.items():
        assert decision.by_strategy[strategy] == jobs, strategy
    assert decision.jobs == decision.by_strategy[spec.strategy]


THREE = [
    TriggerReading("a", (10,), 1, True),
    TriggerReading("b", (4,), 2, True),  # 2 Jobs wanted
    TriggerReading("c", (50,), 1, False),  # inactive: not combined
]


@pytest.mark.parametrize(("how", "max_scale"), [("max", 10), ("min", 2), ("avg", 6), ("sum", 12)])
def test_multiple_scalers_calculation(how: str, max_scale: int) -> None:
    decision = decide(ScaledJobSpec(multiple_scalers_calculation=how), THREE, running=0)
    assert decision.max_scale == max_scale
    assert decision.jobs == max_scale


def test_a_failing_trigger_is_skipped_for_the_poll() -> None:
    readings = [
        TriggerReading("a", (3,), 1, True),
        TriggerReading("b", error="UNAVAILABLE: redis down"),
    ]
    decision = decide(ScaledJobSpec(), readings, running=0)
    assert decision.jobs == 3
    assert any("skipped" in r and "redis down" in r for r in decision.reasons)
    all_failed = decide(ScaledJobSpec(), [TriggerReading("b", error="x")], running=0)
    assert (all_failed.active, all_failed.jobs) == (False, 0)


def test_values_are_summed_per_metric_and_bad_values_count_zero() -> None:
    reading = TriggerReading("a", (2.0, 3.0, -1.0, math.nan, math.inf), 1, True)
    assert reading.queue_length == 5.0


@pytest.mark.parametrize(
    ("as_int", "as_float", "value"),
    [(5, 5.5, 5.5), (5, 0.0, 5.0), (0, math.nan, 0.0), (-3, 0.0, 0.0), (0, math.inf, 0.0)],
)
def test_keda_reads_float_then_int(as_int: int, as_float: float, value: float) -> None:
    assert keda_value(as_int, as_float) == value


def test_counts_are_checked() -> None:
    with pytest.raises(ValueError, match="pending"):
        decide(ScaledJobSpec(), one(1), running=1, pending=2)


MANIFEST = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledJob",
    "metadata": {"name": "worker", "namespace": "jobs"},
    "spec": {
        "pollingInterval": 5,
        "maxReplicaCount": 20,
        "minReplicaCount": 30,
        "scalingStrategy": {"strategy": "custom", "customScalingQueueLengthDeduction": 1, "customScalingRunningJobPercentage": "0.5"},
        "envSourceContainerName": "worker",
        "jobTargetRef": {"template": {"spec": {"containers": [
            {"name": "sidecar", "env": [{"name": "ADDR", "value": "wrong:1"}]},
            {"name": "worker", "env": [
                {"name": "ADDR", "value": "redis:6379"},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}},
                {"name": "EMPTY", "value": ""},
            ]},
        ]}}},
        "triggers": [{"type": "external", "metadata": {
            "scalerAddress": "scaler:6000", "scalerType": "redis", "listName": "jobs",
            "addressFromEnv": "ADDR", "passwordFromEnv": "PASSWORD", "usernameFromEnv": "EMPTY", "listLength": 2,
        }}],
    },
}  # fmt: skip


def test_from_manifest_resolves_like_keda() -> None:
    spec = from_manifest(MANIFEST, env={"PASSWORD": "from-secret"})
    assert (spec.name, spec.namespace, spec.polling_interval) == ("worker", "jobs", 5)
    assert (spec.min_replica_count, spec.max_replica_count) == (20, 20)  # min capped at max
    assert (spec.strategy, spec.queue_length_deduction, spec.running_job_percentage) == (
        "custom",
        1,
        0.5,
    )
    metadata = spec.triggers[0].metadata
    assert metadata["addressFromEnv"] == "redis:6379"  # from envSourceContainerName
    assert metadata["passwordFromEnv"] == "from-secret"
    assert "usernameFromEnv" not in metadata  # empty variable: key dropped
    assert metadata["listLength"] == "2"
    assert spec.triggers[0].scaler_address == "scaler:6000"
    unresolved = from_manifest(MANIFEST)
    assert "passwordFromEnv" not in unresolved.triggers[0].metadata


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ScaledObject"}, "explain models ScaledJobs"),
        ({"spec": None}, "spec is missing"),
        ({"spec": {"triggers": []}}, "at least one trigger"),
        ({"spec": {"triggers": [{"type": "external"}]}}, "metadata mapping"),
        (
            {"spec": {"scalingStrategy": {"strategy": "fast"}, "triggers": [{"metadata": {}}]}},
            "'fast'",
        ),
        ({"spec": {"maxReplicaCount": -1, "triggers": [{"metadata": {}}]}}, "maxReplicaCount"),
        ({"spec": {"pollingInterval": 0, "triggers": [{"metadata": {}}]}}, "pollingInterval"),
    ],
)
def test_bad_manifests(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        from_manifest({**MANIFEST, **change})


def test_defaults_when_unset() -> None:
    spec = from_manifest(
        {"kind": "ScaledJob", "spec": {"triggers": [{"type": "external", "metadata": {}}]}}
    )
    assert (
        spec.max_replica_count,
        spec.polling_interval,
        spec.strategy,
        spec.multiple_scalers_calculation,
    ) == (100, 30, "default", "max")
