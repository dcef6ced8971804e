"""Every PromQL expression and legend in the Grafana dashboard uses only metrics and
labels a running server really exports (checked against a live /metrics scrape)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from scaler.brokers.memory.client import MemoryAdapter
from scaler.errors import BrokerUnavailable
from scaler.kube.jobs import JobTracker
from scaler.server import WatchHealth
from tests.conftest import ServerFactory, metrics_request, ref

DASHBOARD = (
    Path(__file__).parents[2]
    / "charts"
    / "keda-queue-scaler"
    / "dashboards"
    / "keda-queue-scaler.json"
)
METRIC = re.compile(r"\b(keda_queue_scaler_[a-z_]+)\b")
MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\(\s*([a-z_]+)[^,]*,\s*(\w+)\s*\)")
# Labels Prometheus adds to every scraped series (target labels), and its own metric.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "container", "endpoint"}


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(expr, legendFormat) of every panel target and every templating query."""
    out = [
        (t["expr"], t.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for t in panel.get("targets", [])
    ]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            out.append((var["definition"], ""))
    return out


def feed_jobs(registry: Any) -> None:
    """A Job tracker (serve --kubernetes) on the server's registry, fed a Job that
    starts and completes and one that fails, so every Job series has its labels."""

    class Watches:
        def health(self) -> list[tuple[str, bool]]:
            return [("Secrets in all namespaces", True)]

    registry.register(WatchHealth(Watches()))  # type: ignore[arg-type]
    tracker = JobTracker(registry, scaledjobs=lambda: [("team", "render")])
    tracker.replace_jobs([], True)
    tracker.replace_pods([], True)
    meta = {"namespace": "team", "labels": {"scaledjob.keda.sh/name": "render"},
            "creationTimestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
    for name, condition in (("render-a", "Complete"), ("render-b", "Failed")):
        tracker.apply_job("ADDED", {"metadata": {**meta, "name": name}, "status": {}})
        tracker.apply_pod("ADDED", {
            "metadata": {"namespace": "team", "name": f"{name}-pod", "labels": {"job-name": name}},
            "status": {"phase": "Running", "containerStatuses": [
                {"state": {"running": {"startedAt": "2026-01-01T00:00:04Z"}}}]},
        })  # fmt: skip
        tracker.apply_job("MODIFIED", {"metadata": {**meta, "name": name}, "status": {
            "startTime": "2026-01-01T00:00:01Z", "completionTime": "2026-01-01T00:01:00Z",
            "conditions": [{"type": condition, "status": "True", "reason": "BackoffLimitExceeded",
                            "lastTransitionTime": "2026-01-01T00:01:00Z"}],
        }})  # fmt: skip


async def live_series(start_server: ServerFactory) -> dict[str, set[str]]:
    """Sample name -> label names, after exercising every code path that labels."""
    memory = MemoryAdapter()
    memory.put("jobs", 3)
    memory.set_failure("broken", BrokerUnavailable("down"))
    memory.set_delay("slow", 0.05)  # concurrent callers join one read: coalesced waits
    ok = {"scalerType": "memory", "queueName": "jobs"}
    async with start_server(adapters={"memory": memory}, stream_interval=0.05) as s:
        await s.stub.GetMetricSpec(ref(ok))
        await s.stub.GetMetrics(metrics_request(ok))
        await s.stub.IsActive(ref(ok))
        await asyncio.gather(*(s.stub.IsActive(ref({**ok, "queueName": "slow"})) for _ in range(5)))
        with contextlib.suppress(grpc.aio.AioRpcError):
            await s.stub.GetMetrics(metrics_request({**ok, "queueName": "broken"}))
        feed_jobs(s.server.registry)
        # a measure: age trigger's reading, as the servicer records it (tests/integration/
        # test_age.py reads one from a real Redis over gRPC)
        s.server.metrics.set_workload("team-a", "render", "s0-redis-jobs-age", 5.0, True, age=5.0)
        stream = s.stub.StreamIsActive(ref(ok))
        await stream.read()
        url = f"http://127.0.0.1:{s.server.metrics_port}/metrics"
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode()
        )
        stream.cancel()
    series: dict[str, set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[sample.name].update(sample.labels)
    return series


async def test_dashboard_matches_live_metrics(start_server: ServerFactory) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = await live_series(start_server)
    checked = 0
    for expr, legend in queries(dashboard):
        names = set(METRIC.findall(expr))
        assert names, f"no keda_queue_scaler metric in {expr!r}"
        for name in names:
            assert name in series, f"{name} is not exported (in {expr!r})"
        available = set().union(*(series[n] for n in names)) | TARGET_LABELS
        if any(n.endswith("_bucket") for n in names):
            assert "le" in available
        used = set(MATCHER.findall(expr)) | set(LEGEND.findall(legend))
        for group in GROUPING.findall(expr):
            used |= {label.strip() for label in group.split(",") if label.strip()}
        for metric, label in LABEL_VALUES.findall(expr):
            assert label in series[metric] | TARGET_LABELS, (metric, label)
        assert used <= available, f"labels {used - available} not on {names} ({expr!r})"
        checked += 1
    assert checked >= 15


def test_dashboard_is_importable_on_its_own() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "keda-queue-scaler"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "job", "instance", "scaler_type", "metric"} <= variables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_per_scaledjob_panel_follows_the_scaledjob_variables() -> None:
    """The namespace and ScaledJob pickers narrow every panel whose series name a
    ScaledJob; the shared series (broker reads, RPCs) carry no ScaledJob to filter by."""
    dashboard = json.loads(DASHBOARD.read_text())
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert {"scaled_namespace", "scaled_name"} <= set(names)
    per_scaledjob = [
        (panel["title"], t["expr"])
        for panel in dashboard["panels"]
        for t in panel.get("targets", [])
        if re.search(r"keda_queue_scaler_(workload|scaledjob|oldest)_", t["expr"])
    ]
    assert len(per_scaledjob) >= 8
    for title, expr in per_scaledjob:
        for selector in re.findall(r"keda_queue_scaler_\w+\{[^}]*\}", expr):
            assert 'scaled_namespace=~"$scaled_namespace"' in selector, title
            assert 'scaled_name=~"$scaled_name"' in selector, title


def test_the_label_check_can_fail() -> None:
    series = {"keda_queue_scaler_rpc_requests_total": {"method", "code"}}
    expr = 'sum by (queue) (rate(keda_queue_scaler_rpc_requests_total{method="x"}[5m]))'
    used = set(MATCHER.findall(expr)) | {g.strip() for g in GROUPING.findall(expr)[0].split(",")}
    assert used - series["keda_queue_scaler_rpc_requests_total"] == {"queue"}


ANNOTATION_LABEL = re.compile(r"\$labels\.(\w+)")


def rendered_rules(helm: str) -> list[dict[str, Any]]:
    import subprocess

    import yaml

    chart = DASHBOARD.parents[1]
    done = subprocess.run(
        [helm, "template", "kqs", str(chart), "--kube-version", "1.37.0",
         "-f", str(chart / "ci" / "monitoring-values.yaml"), "--show-only", "templates/prometheusrule.yaml"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rule = yaml.safe_load(done.stdout)
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


async def test_alert_rules_match_live_metrics(start_server: ServerFactory, helm: str) -> None:
    series = await live_series(start_server)
    series["up"] = set()  # Prometheus' own
    rules = rendered_rules(helm)
    assert {r["alert"] for r in rules} == {
        "KedaQueueScalerDown", "KedaQueueScalerBrokerErrors", "KedaQueueScalerScaledJobErrors",
        "KedaQueueScalerSlowBrokerReads", "KedaQueueScalerJobsFailing",
        "KedaQueueScalerJobsAtMaxReplicas", "KedaQueueScalerJobsSlow",
        "KedaQueueScalerWorkQueuedNoJobStarting", "KedaQueueScalerKubernetesWatchFailing",
        "KedaQueueScalerWorkWaitingTooLong",
    }  # fmt: skip
    for rule in rules:
        expr = rule["expr"]
        names = set(METRIC.findall(expr)) | ({"up"} if expr.startswith("up{") else set())
        assert names, expr
        for name in names:
            assert name in series, f"{name} is not exported ({rule['alert']})"
        available = set().union(*(series[n] for n in names)) | TARGET_LABELS
        used = set(MATCHER.findall(expr))
        grouped: set[str] = set()
        for group in GROUPING.findall(expr):
            grouped |= {label.strip() for label in group.split(",") if label.strip()}
        assert used | grouped <= available, (rule["alert"], (used | grouped) - available)
        # After `sum by (...)` only the grouped labels remain for the annotations.
        kept = grouped if grouped else available
        for text in rule["annotations"].values():
            for label in ANNOTATION_LABEL.findall(text):
                assert label in kept, (rule["alert"], label)
        assert rule["labels"]["severity"] in {"warning", "critical"}
