"""scaler.keda.scaledobject: reading a ScaledObject as KEDA does, and the branches of
KEDA's RequestScale (pkg/scaling/executor/scale_scaledobjects.go) that decide() mirrors.
The HPA's arithmetic is compared with the HPA controller's own code in
tests/e2e/test_scaledobjects.py, and the whole with the real HPA there."""

from __future__ import annotations

import pytest

from scaler.keda.manifest import ManifestError
from scaler.keda.scaledobject import MetricReading, ScaledObjectSpec, decide, from_manifest

TARGET = {
    "kind": "Deployment",
    "metadata": {"name": "w", "namespace": "team"},
    "spec": {"template": {"spec": {"containers": [
        {"name": "side", "env": [{"name": "ADDR", "value": "side:6379"}]},
        {"name": "main", "env": [{"name": "ADDR", "value": "main:6379"}]},
    ]}}},
}  # fmt: skip


def _so(**spec: object) -> dict[str, object]:
    return {
        "kind": "ScaledObject",
        "metadata": {"name": "so", "namespace": "team"},
        "spec": {"scaleTargetRef": {"name": "w"},
                 "triggers": [{"type": "external", "metadata": {"addressFromEnv": "ADDR"}}],
                 **spec},
    }  # fmt: skip


def _metric(value: float, active: bool, error: str | None = None) -> MetricReading:
    return MetricReading("s0-m", "AverageValue", value, 3.0, active, error)


def test_defaults_and_env_from_the_scale_target() -> None:
    scaled = from_manifest(_so(), TARGET)
    assert scaled.spec == ScaledObjectSpec(0, 100, None, 300, None)
    assert scaled.polling_interval == 30
    assert scaled.target == "Deployment/w"
    assert scaled.triggers[0].metadata == {"addressFromEnv": "side:6379"}  # the first
    named = _so(scaleTargetRef={"name": "w", "envSourceContainerName": "main"})
    assert from_manifest(named, TARGET).triggers[0].metadata == {"addressFromEnv": "main:6379"}
    alone = from_manifest(_so())
    assert alone.triggers[0].metadata == {}
    assert [u.variable for u in alone.unresolved] == ["ADDR"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"minReplicaCount": 3, "maxReplicaCount": 2}, "MinReplicaCount=3 must be less"),
        ({"idleReplicaCount": 0}, "IdleReplicaCount=0 must be less than MinReplicaCount=0"),
        ({"minReplicaCount": "2"}, "minReplicaCount must be a whole number"),
        ({"scaleTargetRef": {}}, "scaleTargetRef.name is missing"),
    ],
)
def test_refused_like_keda(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        from_manifest(_so(**spec), TARGET)


def test_metric_type_utilization_is_not_for_external_triggers() -> None:
    doc = _so()
    doc["spec"]["triggers"][0]["metricType"] = "Utilization"  # type: ignore[index]
    with pytest.raises(ManifestError, match="metricType 'Utilization'"):
        from_manifest(doc, TARGET)


def test_active_at_zero_keda_activates_then_the_hpa() -> None:
    d = decide(ScaledObjectSpec(min_replica_count=2, max_replica_count=4), [_metric(7, True)],
               replicas=0)  # fmt: skip
    assert (d.keda_replicas, d.hpa_replicas, d.next_replicas) == (2, 3, 3)


def test_inactive_above_zero_waits_for_the_cooldown() -> None:
    d = decide(ScaledObjectSpec(cooldown_period=60), [_metric(1, False)], replicas=3)
    assert d.keda_replicas == 0
    assert "cooldownPeriod 60 s" in d.keda
    assert (d.next_replicas, d.settles_at) == (1, 0)  # the HPA's ceil(1 / 3) until then


def test_inactive_with_idle_goes_to_idle_not_min() -> None:
    spec = ScaledObjectSpec(min_replica_count=2, idle_replica_count=0)
    assert decide(spec, [_metric(0, False)], replicas=2).settles_at == 0


def test_a_failing_trigger_without_fallback_changes_nothing() -> None:
    d = decide(ScaledObjectSpec(), [_metric(0, False, "UNAVAILABLE: down")], replicas=2)
    assert d.keda_replicas is None
    assert "Ready False" in d.keda
    assert (d.hpa_replicas, d.next_replicas) == (None, 2)
    fallback = decide(ScaledObjectSpec(fallback_replicas=4), [_metric(0, False, "down")],
                      replicas=2)  # fmt: skip
    assert "4 replicas (fallback)" in fallback.keda


def test_a_failing_metric_beside_a_working_one_never_scales_down() -> None:
    metrics = [_metric(3, True), MetricReading("s1-m", "AverageValue", 0, 1, False, "down")]
    d = decide(ScaledObjectSpec(), metrics, replicas=4)
    assert d.per_metric == (1, None)
    assert d.hpa_replicas == 4


def test_below_min_without_idle_keda_sets_min() -> None:
    d = decide(ScaledObjectSpec(min_replica_count=3), [_metric(0, False)], replicas=1)
    assert d.keda_replicas == 3
