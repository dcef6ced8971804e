"""Reading ScaledJob manifests as KEDA does (scaler.keda.manifest), and the small Go
conversions the ScaledJob arithmetic restates. The arithmetic itself is checked
against KEDA's own code in tests/keda."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scaler.keda.env import expand
from scaler.keda.manifest import ManifestError, from_manifest
from scaler.keda.scaledjob import decide, metric_target, metric_value, parse_go_float

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
                {"name": "HOST", "value": "redis"},
                {"name": "ADDR", "value": "$(HOST):6379"},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}},
                {"name": "EMPTY", "value": ""},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ]},
        ]}}},
        "triggers": [{"type": "external", "metadata": {
            "scalerAddress": "scaler:6000", "scalerType": "redis", "listName": "jobs",
            "addressFromEnv": "ADDR", "passwordFromEnv": "PASSWORD", "usernameFromEnv": "EMPTY",
            "listLength": 2, "databaseIndexFromEnv": "NOPE",
        }}],
    },
}  # fmt: skip


def test_from_manifest_resolves_like_keda() -> None:
    job = from_manifest(MANIFEST, env={"PASSWORD": "from-secret"})
    assert (job.name, job.namespace, job.polling_interval) == ("worker", "jobs", 5)
    # KEDA keeps the raw numbers; MinReplicaCount() caps min at max, and
    # MaxReplicaCount() is then max itself (min > max).
    assert (job.spec.min_replica_count, job.spec.max_replica_count) == (30, 20)
    assert (job.spec.min_replicas(), job.spec.max_replicas()) == (20, 20)
    strategy = job.spec.scaling_strategy
    assert (strategy.strategy, strategy.effective, strategy.percentage) == ("custom", "custom", 0.5)
    metadata = job.triggers[0].metadata
    assert metadata["addressFromEnv"] == "redis:6379"  # envSourceContainerName, $(HOST) expanded
    assert metadata["passwordFromEnv"] == "from-secret"
    assert "usernameFromEnv" not in metadata  # empty variable: key dropped
    assert "databaseIndexFromEnv" not in metadata  # undefined variable: key dropped
    assert metadata["listLength"] == "2"
    assert job.triggers[0].scaler_address == "scaler:6000"
    assert [(u.key, u.source) for u in job.unresolved] == [("databaseIndexFromEnv", "not defined")]


def test_a_secret_value_not_supplied_is_named() -> None:
    job = from_manifest(MANIFEST)
    assert "passwordFromEnv" not in job.triggers[0].metadata
    (missing, _) = job.unresolved
    assert (missing.key, missing.variable) == ("passwordFromEnv", "PASSWORD")
    assert "Secret s key p" in str(missing)
    assert "--env PASSWORD=" in str(missing)


@pytest.mark.parametrize(
    ("value", "env", "expanded"),
    [
        ("$(A)-x", {"A": "1"}, "1-x"),
        ("$(B)-x", {}, "$(B)-x"),  # unknown: kept
        ("$$(A)x", {"A": "1"}, "$(A)x"),  # escaped
        ("a$(", {}, "a$("),  # too short to be a reference
        ("$(A", {}, "$(A"),
        ("$(Aopen", {}, "$(Aopen"),
        ("$xyz", {}, "$xyz"),
    ],
)
def test_expand_like_resolve_env_value(value: str, env: dict[str, str], expanded: str) -> None:
    assert expand(value, env) == expanded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ScaledObject"}, "explain reads ScaledJobs"),
        ({"spec": None}, "spec is missing"),
        ({"spec": {"triggers": []}}, "at least one trigger"),
        ({"spec": {"triggers": [{"type": "external"}]}}, "metadata mapping"),
        (
            {"spec": {"scalingStrategy": {"strategy": "fast"}, "triggers": [{"metadata": {}}]}},
            "'fast'",
        ),
        ({"spec": {"maxReplicaCount": "x", "triggers": [{"metadata": {}}]}}, "maxReplicaCount"),
        ({"spec": {"maxReplicaCount": 2**40, "triggers": [{"metadata": {}}]}}, "int32"),
        ({"spec": {"pollingInterval": 0, "triggers": [{"metadata": {}}]}}, "pollingInterval"),
    ],
)
def test_bad_manifests(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        from_manifest({**MANIFEST, **change})


def test_defaults_when_unset() -> None:
    job = from_manifest(
        {"kind": "ScaledJob", "spec": {"triggers": [{"type": "external", "metadata": {}}]}}
    )
    assert (job.spec.max_replicas(), job.spec.min_replicas(), job.polling_interval) == (100, 0, 30)
    assert (job.spec.scaling_strategy.effective, job.spec.scaling_strategy.calculation) == (
        "default",
        "max",
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", 0.5), ("1e-1", 0.1), (".5", 0.5), ("2.", 2.0), ("-1", -1.0), ("0x1p-2", 0.25),
     ("Inf", math.inf), ("abc", None), (" 0.5", None), ("", None), ("1_000", None),
     ("1e400", None), ("0x10", None), (".", None), ("e5", None)],
)  # fmt: skip
def test_parse_go_float(text: str, value: float | None) -> None:
    assert parse_go_float(text) == value


def test_nan_percentage_parses_in_go() -> None:
    value = parse_go_float("NaN")
    assert value is not None
    assert math.isnan(value)


def test_float_fields_win_when_positive() -> None:
    assert metric_value(5, 5.5) == 5.5
    assert metric_value(5, 0.0) == 5.0
    assert metric_value(-3, 0.0) == 0.0
    assert metric_target(3, 0.0) == 3.0
    assert metric_target(3, 0.25) == 0.25


def test_counts_are_checked() -> None:
    """Negative counts are refused; pending above running is KEDA's own (its two Job
    listings), compared with KEDA in tests/keda/test_jobmodel_parity.py."""
    from scaler.keda.scaledjob import ScaledJobSpec

    with pytest.raises(ValueError, match="pending"):
        decide(ScaledJobSpec(), [], running=1, pending=-1)
    with pytest.raises(ValueError, match="running"):
        decide(ScaledJobSpec(), [], running=-1, pending=0)
