"""The Job tracker's bookkeeping (the end-to-end suite checks its counts against a real
API server): history is not replayed after a restart, pending follows KEDA's rule,
and the number of ScaledJobs exported is bounded."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from scaler.kube.jobs import JobTracker


def job(name: str, scaledjob: str = "render", ns: str = "team", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"scaledjob.keda.sh/name": scaledjob}},
        "status": status,
    }  # fmt: skip


def done(name: str, kind: str = "Complete", reason: str = "", **kw: Any) -> dict[str, Any]:
    return job(name, startTime="2026-01-01T00:00:02Z", completionTime="2026-01-01T00:00:12Z",
               conditions=[{"type": kind, "status": "True", "reason": reason,
                            "lastTransitionTime": "2026-01-01T00:00:12Z"}], **kw)  # fmt: skip


def pod(
    name: str, job_name: str, phase: str, conditions: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": name, "labels": {"job-name": job_name}},
        "status": {"phase": phase,
                   "conditions": [{"type": t, "status": s} for t, s in (conditions or {}).items()],
                   "containerStatuses": [{"state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}]
                   if phase == "Running" else []},
    }  # fmt: skip


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_jobs_finished_before_the_first_listing_are_not_counted() -> None:
    registry = CollectorRegistry()
    tracker = JobTracker(registry)
    tracker.replace_pods([], True)
    tracker.replace_jobs([done("old-1"), done("old-2", "Failed", "BackoffLimitExceeded")], True)
    labels = {"scaled_namespace": "team", "scaled_name": "render"}
    assert value(registry, "keda_queue_scaler_scaledjob_jobs_finished_total",
                 outcome="succeeded", reason="", **labels) == 0  # fmt: skip
    tracker.apply_job("ADDED", job("new"))
    tracker.apply_pod("ADDED", pod("new-x", "new", "Running"))
    tracker.apply_job("MODIFIED", done("new", "Failed", "DeadlineExceeded"))
    tracker.apply_job("MODIFIED", done("new", "Failed", "DeadlineExceeded"))  # once only
    assert value(registry, "keda_queue_scaler_scaledjob_jobs_finished_total",
                 outcome="failed", reason="DeadlineExceeded", **labels) == 1  # fmt: skip
    # Created at 0 s, its container started at 5 s; ran from 2 s to 12 s.
    assert value(registry, "keda_queue_scaler_scaledjob_job_start_seconds_sum", **labels) == 5
    assert value(registry, "keda_queue_scaler_scaledjob_job_duration_seconds_sum",
                 outcome="failed", **labels) == 10  # fmt: skip


def test_pending_follows_kedas_pending_pod_conditions() -> None:
    registry = CollectorRegistry()
    tracker = JobTracker(registry, pending_conditions=lambda ns, name: ("Ready", "PodScheduled"))
    tracker.replace_jobs([job("a"), job("b"), job("c")], True)
    tracker.replace_pods([
        pod("a-1", "a", "Running", {"Ready": "True", "PodScheduled": "True"}),
        pod("b-1", "b", "Running", {"Ready": "False", "PodScheduled": "True"}),
    ], True)  # fmt: skip
    labels = {"scaled_namespace": "team", "scaled_name": "render"}
    assert value(registry, "keda_queue_scaler_scaledjob_jobs", state="active", **labels) == 1
    assert value(registry, "keda_queue_scaler_scaledjob_jobs", state="pending", **labels) == 2


def test_scaledjobs_exported_are_bounded() -> None:
    registry = CollectorRegistry()
    tracker = JobTracker(registry, max_series=2)
    tracker.replace_jobs([], True)
    tracker.replace_pods([], True)
    for i in range(4):
        tracker.apply_job("ADDED", job(f"j{i}", scaledjob=f"sj{i}"))
        tracker.apply_job("MODIFIED", done(f"j{i}", scaledjob=f"sj{i}"))
    kept = [i for i in range(4) if value(registry, "keda_queue_scaler_scaledjob_jobs_finished_total",
            scaled_namespace="team", scaled_name=f"sj{i}", outcome="succeeded", reason="")]  # fmt: skip
    assert kept == [2, 3]
    assert value(registry, "keda_queue_scaler_scaledjob_series_evicted_total") == 2


def test_each_scaledjob_exports_its_max_replica_count() -> None:
    """Beside the Jobs, the cap KEDA stops at: the saturation alert compares them."""
    registry = CollectorRegistry()
    caps = {("team", "render"): 4}
    tracker = JobTracker(
        registry,
        scaledjobs=lambda: [("team", "render"), ("team", "mail")],
        max_replicas=lambda ns, name: caps.get((ns, name), 100),
    )
    tracker.replace_jobs([job("a")], True)
    tracker.replace_pods([pod("a-1", "a", "Running")], True)
    cap = "keda_queue_scaler_scaledjob_max_replicas"
    assert value(registry, cap, scaled_namespace="team", scaled_name="render") == 4
    assert value(registry, cap, scaled_namespace="team", scaled_name="mail") == 100
