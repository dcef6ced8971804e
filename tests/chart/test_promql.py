"""The dashboard's and the alerts' PromQL, evaluated by Prometheus itself (``promtool
test rules``) over samples this test controls, checking values, not names.

The series fed in are the ones a freshly started server exports (scraped from its
/metrics before any traffic), given target labels as Prometheus would add, plus a
controlled traffic pattern and a decoy scaler in another namespace whose numbers must
never leak into the selected one. Every expected value below is worked out by hand
from the pattern (per-minute increments, rates over 2m windows at minute 10).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.chart.test_dashboard import DASHBOARD, rendered_rules
from tests.conftest import ServerFactory

P = "keda_queue_scaler"
TEAM = {"namespace": "team", "job": "kqs"}
A = {**TEAM, "instance": "10.0.0.1:9464", "pod": "kqs-a"}
B = {**TEAM, "instance": "10.0.0.2:9464", "pod": "kqs-b"}
DECOY = {"namespace": "other", "job": "kqs", "instance": "10.0.0.3:9464", "pod": "kqs-c"}

# Grafana's variables as a user picks them: namespace "team", everything else "All".
VARIABLES = {
    "$namespace": "team",
    "$job": ".*",
    "$instance": ".*",
    "$scaler_type": ".*",
    "$metric": ".*",
    "$scaled_namespace": ".*",
    "$scaled_name": ".*",
    "$__rate_interval": "2m",
}


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: scripts/install-brokers installs Debian's prometheus")
    return path


def series(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


async def startup_samples(
    start_server: ServerFactory,
) -> tuple[list[tuple[str, dict[str, str]]], set[str]]:
    """Counter and gauge samples a server exports before its first call, and the names
    of all its metric families (labelled gauges have no sample until first set). The
    server has the Job tracker of serve --kubernetes, as the chart runs it."""
    import asyncio

    from scaler.kube.jobs import JobTracker

    async with start_server() as s:
        JobTracker(s.server.registry)
        url = f"http://127.0.0.1:{s.server.metrics_port}/metrics"
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode()
        )
    out = []
    families = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        if family.type in ("counter", "gauge", "info"):
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    out.append((sample.name, dict(sample.labels)))
    return out, families


def per_minute(step: float) -> str:
    """A counter that grows by ``step`` each minute for 10 minutes (rate = step/60)."""
    return f"0+{step:g}x10"


def traffic() -> dict[str, str]:
    """The controlled pattern: series -> values (1m apart)."""
    t: dict[str, str] = {}

    def add(name: str, where: dict[str, str], value: str, **labels: str) -> None:
        t[series(f"{P}_{name}", {**where, **labels})] = value

    for where, scale in ((A, 1), (DECOY, 50)):
        # Redis on A: 2 cache hits/s, 1 ok read/s, 1 failed read/s, and no coalesced
        # wait ever (its series exists only because a server creates it at 0).
        add("cache_hits_total", where, per_minute(120 * scale), scaler_type="redis")
        if where is DECOY:
            add("coalesced_waits_total", where, per_minute(60 * scale), scaler_type="redis")
        add("broker_reads_total", where, per_minute(60 * scale), scaler_type="redis", outcome="ok")
        add(
            "broker_reads_total", where, per_minute(60 * scale),
            scaler_type="redis", outcome="unavailable",
        )  # fmt: skip
        # Read latency: 50/s within 10 ms (none under 5 ms), 100/s within 25 ms.
        for le, rate in (("0.005", 0), ("0.01", 50), ("0.025", 100), ("+Inf", 100)):
            add(
                "broker_read_duration_seconds_bucket", where, per_minute(rate * 60 * scale),
                scaler_type="redis", le=le,
            )  # fmt: skip
            add(
                "rpc_duration_seconds_bucket", where, per_minute(rate * 60 * scale),
                method="GetMetrics", le=le,
            )  # fmt: skip
        # GetMetrics: 2 OK/s and 1 UNAVAILABLE/s; IsActive 1 OK/s; a stream always open.
        add("rpc_requests_total", where, per_minute(120 * scale), method="GetMetrics", code="OK")
        add(
            "rpc_requests_total", where, per_minute(60 * scale),
            method="GetMetrics", code="UNAVAILABLE",
        )  # fmt: skip
        add("rpc_requests_total", where, per_minute(60 * scale), method="IsActive", code="OK")
        # Another team's ScaledJob reads a queue of the same name: a series of its own.
        mail = {"scaled_namespace": "team-b", "scaled_name": "mail"}
        add("workload_value", where, f"{2 * scale}x10", metric="s0-redis-jobs", **mail)
        add("workload_active", where, "1x10", metric="s0-redis-jobs", **mail)
        add("stream_is_active_streams", where, f"{2 * scale}x10")
    # One ScaledJob, team-a/render, seen by both replicas A and B (each watches the same
    # Jobs and answers the same polls); the decoy's is 50 times larger.
    sj = {"scaled_namespace": "team-a", "scaled_name": "render"}
    for where, scale in ((A, 1), (B, 1), (DECOY, 50)):
        # Two triggers: 12 and 3 items; a third measures age: its oldest item waited 95 s.
        add("workload_value", where, f"{12 * scale}x10", metric="s0-redis-jobs", **sj)
        add("workload_value", where, f"{3 * scale}x10", metric="s1-redis-more", **sj)
        add("workload_value", where, f"{95 * scale}x10", metric="s2-redis-jobs-age", **sj)
        add("oldest_item_age_seconds", where, f"{95 * scale}x10", metric="s2-redis-jobs-age", **sj)
        add("workload_active", where, "1x10", metric="s0-redis-jobs", **sj)
        add("workload_active", where, "0x10", metric="s1-redis-more", **sj)
        add("workload_active", where, "1x10", metric="s2-redis-jobs-age", **sj)
        add("scaledjob_jobs", where, f"{3 * scale}x10", state="active", **sj)
        add("scaledjob_jobs", where, f"{2 * scale}x10", state="pending", **sj)
        # 30 completions and 6 BackoffLimitExceeded failures a minute.
        add("scaledjob_jobs_finished_total", where, per_minute(30 * scale),
            outcome="succeeded", reason="", **sj)  # fmt: skip
        add("scaledjob_jobs_finished_total", where, per_minute(6 * scale),
            outcome="failed", reason="BackoffLimitExceeded", **sj)  # fmt: skip
        # Starts: of 60 a minute, none within 1 s, 30 within 2 s, all within 5 s.
        for le, count in (("1", 0), ("2", 30), ("5", 60), ("+Inf", 60)):
            add("scaledjob_job_start_seconds_bucket", where, per_minute(count * scale),
                le=le, **sj)  # fmt: skip
    # SQS on B: 3 cache hits/s, 3 ok reads/s; its queue is empty and inactive.
    add("cache_hits_total", B, per_minute(180), scaler_type="aws-sqs-queue")
    add("broker_reads_total", B, per_minute(180), scaler_type="aws-sqs-queue", outcome="ok")
    add("rpc_requests_total", B, per_minute(60), method="GetMetrics", code="OK")
    add("stream_is_active_streams", B, "1x10")
    return t


def input_series(
    startup: list[tuple[str, dict[str, str]]], families: set[str]
) -> list[dict[str, str]]:
    """What Prometheus would hold: every startup series on each scaler, at 0 unless the
    traffic pattern moves it."""
    held: dict[str, str] = {}
    for where in (A, B, DECOY):
        for name, labels in startup:
            value = "1x10" if name.endswith("_info") else "0x10"
            held[series(name, {**labels, **where})] = value
    for name in traffic():
        base = name.split("{", 1)[0]
        family = base.removesuffix("_total").removesuffix("_bucket")
        assert family in families, f"{base} is fed to the test but a server does not export it"
    held.update(traffic())
    return [{"series": k, "values": v} for k, v in held.items()]


def s(value: float, **labels: str) -> dict[str, Any]:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"labels": "{" + inner + "}", "value": value}


def full(name: str, where: dict[str, str], value: float, **labels: str) -> dict[str, Any]:
    return {"labels": series(name, {**where, **labels}), "value": value}


def expected(version: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(panel title, legend) -> the samples Prometheus must answer at minute 10."""
    mail = {"scaled_namespace": "team-b", "scaled_name": "mail"}
    return {
        # The largest over the replicas (both answer the same polls), per ScaledJob and
        # metric: team-b's queue of the same name is its own series, never a flip.
        (
            "Queue value per ScaledJob and metric",
            "{{scaled_namespace}}/{{scaled_name}} {{metric}}",
        ): [
            s(12, metric="s0-redis-jobs", **SJ),
            s(3, metric="s1-redis-more", **SJ),
            s(95, metric="s2-redis-jobs-age", **SJ),
            s(2, metric="s0-redis-jobs", **mail),
        ],
        # render's s0 and s2 and mail's s0, each once: 3, not the 5 a sum over replicas gives.
        ("Active triggers", "active"): [s(3)],
        ("StreamIsActive streams open", "streams"): [s(3)],
        ("Activity per ScaledJob and metric", "{{scaled_namespace}}/{{scaled_name}} {{metric}}"): [
            s(1, metric="s0-redis-jobs", **SJ),
            s(0, metric="s1-redis-more", **SJ),
            s(1, metric="s2-redis-jobs-age", **SJ),
            s(1, metric="s0-redis-jobs", **mail),
        ],
        ("Broker reads by outcome", "{{scaler_type}} {{outcome}}"): [
            s(1, scaler_type="redis", outcome="ok"),
            s(1, scaler_type="redis", outcome="unavailable"),
            s(3, scaler_type="aws-sqs-queue", outcome="ok"),
            # Started at zero, never read: rate 0, a line at 0 rather than no data.
            *(
                s(0, scaler_type=t, outcome="ok")
                for t in startup_types() - {"redis", "aws-sqs-queue"}
            ),
        ],
        ("Broker errors by scaler type", "{{scaler_type}} {{outcome}}"): [
            s(1, scaler_type="redis", outcome="unavailable"),
        ],
        # Cumulative 0 / 50 / 100 / 100 per second at 5 ms / 10 ms / 25 ms / +Inf:
        # p50 is the 50th of 100, the top of the 10 ms bucket; p99 is 49/50 of the way
        # from 10 ms to 25 ms = 24.7 ms. Other scaler types have no reads: NaN, dropped.
        ("Broker read latency", "p50 {{scaler_type}}"): [s(0.01, scaler_type="redis")],
        ("Broker read latency", "p99 {{scaler_type}}"): [s(0.0247, scaler_type="redis")],
        # (2 + 3 hits + 0 coalesced) / (5 + 1 ok + 1 failed + 3 ok reads) = 5/10. Were
        # coalesced waits not exported from the start, the sum would be empty: no data.
        ("Cache hit ratio", "answers without a broker read"): [s(0.5)],
        ("RPC rate by method and code", "{{method}} {{code}}"): [
            s(3, method="GetMetrics", code="OK"),
            s(1, method="GetMetrics", code="UNAVAILABLE"),
            s(1, method="IsActive", code="OK"),
            s(0, method="GetMetricSpec", code="OK"),
            s(0, method="StreamIsActive", code="OK"),
        ],
        ("RPC latency by method", "p50 {{method}}"): [s(0.01, method="GetMetrics")],
        ("RPC latency by method", "p99 {{method}}"): [s(0.0247, method="GetMetrics")],
        ("RPC errors by code", "{{method}} {{code}}"): [
            s(1, method="GetMetrics", code="UNAVAILABLE")
        ],
        ("Scaler versions", "{{version}}"): [s(2, version=version)],
        # Both replicas report 12 + 3: the largest, 15, not 30 (the age is not a depth).
        ("Queue depth per ScaledJob", "{{scaled_namespace}}/{{scaled_name}}"): [
            s(15, **SJ),
            s(2, scaled_namespace="team-b", scaled_name="mail"),
        ],
        # Both replicas report 95 s: the largest, not the sum; the decoy is elsewhere.
        ("Oldest item age by queue", "{{scaled_namespace}}/{{scaled_name}} {{metric}}"): [
            s(95, metric="s2-redis-jobs-age", **SJ)
        ],
        ("Jobs running and pending", "{{scaled_namespace}}/{{scaled_name}} {{state}}"): [
            s(3, state="active", **SJ),
            s(2, state="pending", **SJ),
        ],
        # Per minute, not doubled by the two replicas.
        (
            "Job completions and failures per minute",
            "{{scaled_namespace}}/{{scaled_name}} {{outcome}}",
        ): [
            s(30, outcome="succeeded", **SJ),
            s(6, outcome="failed", **SJ),
        ],
        ("Job failures by reason", "{{scaled_namespace}}/{{scaled_name}} {{reason}}"): [
            s(6, reason="BackoffLimitExceeded", **SJ),
        ],
        # p50: the 30th of 60, the top of the 2 s bucket; p95: the 57th, 27/30 of the way
        # from 2 s to 5 s = 4.7 s.
        ("Time to start", "p50 {{scaled_namespace}}/{{scaled_name}}"): [s(2, **SJ)],
        ("Time to start", "p95 {{scaled_namespace}}/{{scaled_name}}"): [s(4.7, **SJ)],
    }


SJ = {"scaled_namespace": "team-a", "scaled_name": "render"}
_TYPES: set[str] = set()


def startup_types() -> set[str]:
    return _TYPES


def substitute(expr: str) -> str:
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def run_promtool(promtool: str, tmp_path: Path, test: dict[str, Any]) -> None:
    path = tmp_path / "promql-test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_every_panel_computes_the_expected_values(
    start_server: ServerFactory, promtool: str, tmp_path: Path
) -> None:
    startup, families = await startup_samples(start_server)
    _TYPES.clear()
    _TYPES.update(lbl["scaler_type"] for n, lbl in startup if n == f"{P}_broker_reads_total")
    assert {"redis", "aws-sqs-queue", "rabbitmq"} <= _TYPES
    version = next(lbl["version"] for n, lbl in startup if n == f"{P}_build_info")
    want = expected(version)
    dashboard = json.loads(DASHBOARD.read_text())
    tests = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            key = (panel["title"], target.get("legendFormat", ""))
            assert key in want, f"panel {key} has no expected values in this test"
            # Rounded to 0.1 ms so that values like 24.7 ms compare exactly.
            expr = f"round({substitute(target['expr'])}, 0.0001)"
            if key[0] in ("Queue value per KEDA metric", "Activity per KEDA metric"):
                expr = substitute(target["expr"])  # keep __name__, as Grafana shows it
            tests.append({"expr": expr, "eval_time": "10m", "exp_samples": want.pop(key)})
    assert not want, f"expected values for panels that do not exist: {list(want)}"
    # The templating queries: the values each variable offers.
    tests += [
        {
            "expr": f"count by (namespace) ({P}_build_info)",
            "eval_time": "10m",
            "exp_samples": [s(2, namespace="team"), s(1, namespace="other")],
        },
        {
            "expr": f'count by (job) ({P}_build_info{{namespace=~"team"}})',
            "eval_time": "10m",
            "exp_samples": [s(2, job="kqs")],
        },
    ]
    run_promtool(
        promtool,
        tmp_path,
        {
            "rule_files": [],
            "tests": [
                {
                    "interval": "1m",
                    "input_series": input_series(startup, families),
                    "promql_expr_test": tests,
                }
            ],
        },
    )


def test_the_value_check_can_fail(promtool: str, tmp_path: Path) -> None:
    """The old ratio (`hits + coalesced / all`, PromQL's precedence) gives 5, not 0.5."""
    hits = f'sum(rate({P}_cache_hits_total{{namespace="team"}}[2m]))'
    waits = f'sum(rate({P}_coalesced_waits_total{{namespace="team"}}[2m]))'
    reads = f'sum(rate({P}_broker_reads_total{{namespace="team"}}[2m]))'
    buggy = f"{hits} + {waits} / ({hits} + {waits} + {reads})"
    test = {
        "rule_files": [],
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in traffic().items()],
                "promql_expr_test": [{"expr": buggy, "eval_time": "10m", "exp_samples": [s(0.5)]}],
            }
        ],
    }
    with pytest.raises(AssertionError, match="got"):
        run_promtool(promtool, tmp_path, test)


JOB = {"job": "kqs-keda-queue-scaler", "namespace": "default"}
POD = {**JOB, "instance": "10.0.0.1:9464", "pod": "kqs-a"}


def alert(name: str, labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": {**labels, "severity": "warning" if name != "down" else "critical"},
        "exp_annotations": {"summary": summary, "description": description},
    }


async def test_alerts_fire_when_they_should_and_only_then(
    helm: str, promtool: str, tmp_path: Path
) -> None:
    """The chart's rules (helm-rendered), by promtool, over 20 minutes of samples."""
    rules = rendered_rules(helm)
    descriptions = {r["alert"]: r["annotations"]["description"] for r in rules}
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "keda-queue-scaler", "rules": rules}]})
    )

    def case(input_: dict[str, str], alertname: str, exp: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": [{"series": k, "values": v} for k, v in input_.items()],
            "alert_rule_test": [{"eval_time": "15m", "alertname": alertname, "exp_alerts": exp}],
        }

    down = "KedaQueueScalerDown"
    errors = "KedaQueueScalerBrokerErrors"
    rpc = "KedaQueueScalerScaledJobErrors"
    calls = f"{P}_workload_calls_total"
    render = {"scaled_namespace": "team-a", "scaled_name": "render"}
    mail = {"scaled_namespace": "team-b", "scaled_name": "mail"}
    slow = "KedaQueueScalerSlowBrokerReads"
    reads = f"{P}_broker_reads_total"
    buckets = f"{P}_broker_read_duration_seconds_bucket"
    healthy = {
        series("up", POD): "1x20",
        series(reads, {**POD, "scaler_type": "redis", "outcome": "ok"}): "0+60x20",
        # Started at zero and stays there: no failure, no alert.
        series(reads, {**POD, "scaler_type": "redis", "outcome": "unavailable"}): "0x20",
        series(f"{P}_rpc_requests_total", {**POD, "method": "GetMetrics", "code": "OK"}): "0+60x20",
        series(calls, {**POD, **render, "code": "OK"}): "0+54x20",
        series(calls, {**POD, **mail, "code": "OK"}): "0+6x20",
        series(buckets, {**POD, "scaler_type": "redis", "le": "0.005"}): "0+60x20",
        series(buckets, {**POD, "scaler_type": "redis", "le": "+Inf"}): "0+60x20",
    }
    tests = [
        *(case(healthy, name, []) for name in (down, errors, rpc, slow)),
        # The pod's scrape fails.
        case(
            {**healthy, series("up", POD): "0x20"},
            down,
            [alert("down", POD, "keda-queue-scaler pod kqs-a is not scraped", descriptions[down])],
        ),
        # No target at all: no up series that could be 0; absent() fires.
        case(
            {series("up", {**POD, "job": "someone-else"}): "1x20"},
            down,
            [
                alert(
                    "down",
                    JOB,
                    "no keda-queue-scaler target default/kqs-keda-queue-scaler is scraped",
                    descriptions[down],
                )
            ],
        ),
        # 2 failed reads a minute against 60 good ones: 3 %, under 5 %: quiet.
        case({**healthy, series(reads, {**POD, "scaler_type": "redis", "outcome": "unavailable"}): "0+2x20"},
             errors, []),
        # 6 against 60: 6/66 = 9.1 % of reads fail: fires, per scalerType.
        case(
            {**healthy, series(reads, {**POD, "scaler_type": "redis", "outcome": "unavailable"}): "0+6x20"},
            errors,
            [
                alert(
                    "errors",
                    {"namespace": "default", "scaler_type": "redis"},
                    "9.091% of redis reads fail",
                    descriptions[errors],
                )
            ],
        ),
        # team-a/render: 12 INVALID_ARGUMENT against 54 OK a minute, 12/66 = 18.2 % > 10 %:
        # fires naming it; team-b/mail's cancelled calls are not errors: it stays out.
        case(
            {
                **healthy,
                series(calls, {**POD, **render, "code": "INVALID_ARGUMENT"}): "0+12x20",
                series(calls, {**POD, **mail, "code": "CANCELLED"}): "0+6x20",
            },
            rpc,
            [
                alert(
                    "rpc",
                    {"namespace": "default", **render, "code": "INVALID_ARGUMENT"},
                    "18.18% of KEDA's calls for team-a/render fail with INVALID_ARGUMENT",
                    descriptions[rpc],
                )
            ],
        ),
        # 5 errors against 54 OK: 8.5 %, under 10 %: one team's rare errors stay quiet.
        case({**healthy, series(calls, {**POD, **render, "code": "UNAVAILABLE"}): "0+5x20"}, rpc, []),
        # Every read slower than the largest finite bucket (10 s): p99 is reported as 10 s.
        case(
            {**healthy, series(buckets, {**POD, "scaler_type": "redis", "le": "0.005"}): "0x20",
             series(buckets, {**POD, "scaler_type": "redis", "le": "10"}): "0x20"},
            slow,
            [
                alert(
                    "slow",
                    {"namespace": "default", "scaler_type": "redis"},
                    "p99 redis read takes 10s",
                    descriptions[slow],
                )
            ],
        ),
    ]  # fmt: skip
    tests += job_alert_cases(case, healthy, descriptions)
    tests += age_alert_cases(case, healthy, descriptions)
    run_promtool(promtool, tmp_path, {"rule_files": ["rules.yml"], "tests": tests})


def age_alert_cases(case: Any, healthy: dict[str, str], descriptions: dict[str, str]) -> list[Any]:
    """KedaQueueScalerWorkWaitingTooLong (threshold 900 s, for 10m): per ScaledJob and
    trigger, on the largest reading of the replicas, never their sum."""
    waiting = "KedaQueueScalerWorkWaitingTooLong"
    sj = {"scaled_namespace": "team-a", "scaled_name": "render", "metric": "s0-redis-jobs-age"}
    pod_b = {**POD, "instance": "10.0.0.2:9464", "pod": "kqs-b"}
    age_a = series(f"{P}_oldest_item_age_seconds", {**POD, **sj})
    age_b = series(f"{P}_oldest_item_age_seconds", {**pod_b, **sj})
    other = series(f"{P}_oldest_item_age_seconds",
                   {**POD, **sj, "scaled_namespace": "team-b", "scaled_name": "mail"})  # fmt: skip
    where = {"namespace": "default", **sj}
    return [
        # 600 s on each of two replicas: under 900 (their sum, 1200, is not a reading)
        case({**healthy, age_a: "600x20", age_b: "600x20"}, waiting, []),
        # over the threshold only for the last 5 minutes: not yet "for" 10m
        case({**healthy, age_a: "0x9 1000x10"}, waiting, []),
        # 1,000 s and growing for 15 minutes: fires, naming the team's ScaledJob only
        case({**healthy, age_a: "1000+60x20", age_b: "1000+60x20", other: "30x20"}, waiting, [
            alert("waiting", where, "Work for team-a/render has waited 31m 40s (s0-redis-jobs-age)",
                  descriptions[waiting]),
        ]),
    ]  # fmt: skip


def job_alert_cases(case: Any, healthy: dict[str, str], descriptions: dict[str, str]) -> list[Any]:
    """The Job outcome alerts (serve --kubernetes), for one ScaledJob on one replica."""
    failing, stuck = "KedaQueueScalerJobsFailing", "KedaQueueScalerWorkQueuedNoJobStarting"
    watch = "KedaQueueScalerKubernetesWatchFailing"
    saturated, slow = "KedaQueueScalerJobsAtMaxReplicas", "KedaQueueScalerJobsSlow"
    secrets = series(f"{P}_kubernetes_watch_healthy", {**POD, "watch": "Secrets in all namespaces"})
    sj = {"scaled_namespace": "team-a", "scaled_name": "render"}
    finished = f"{P}_scaledjob_jobs_finished_total"
    succeeded = series(finished, {**POD, **sj, "outcome": "succeeded", "reason": ""})
    failed = series(finished, {**POD, **sj, "outcome": "failed", "reason": "BackoffLimitExceeded"})
    queued = series(f"{P}_workload_active", {**POD, **sj, "metric": "s0-redis-jobs"})
    active = series(f"{P}_scaledjob_jobs", {**POD, **sj, "state": "active"})
    pending = series(f"{P}_scaledjob_jobs", {**POD, **sj, "state": "pending"})
    cap = series(f"{P}_scaledjob_max_replicas", {**POD, **sj})
    starts = series(f"{P}_scaledjob_job_start_seconds_count", {**POD, **sj})
    duration = f"{P}_scaledjob_job_duration_seconds_bucket"

    def took(le: str) -> dict[str, str]:
        """3 Jobs a minute, each finishing within ``le`` seconds and no sooner bucket."""
        return {series(duration, {**POD, **sj, "outcome": "succeeded", "le": b}):
                ("0+3x20" if float(b) >= float(le) else "0x20")
                for b in ("600", "3600", "7200", "+Inf")}  # fmt: skip

    working = {
        **healthy,
        succeeded: "0+3x20",
        failed: "0x20",  # exported, never increasing
        queued: "1x20",
        active: "2x20",
        pending: "0x20",
        cap: "10x20",
        starts: "0+3x20",
        **took("600"),
    }
    where = {"namespace": "default", **sj}
    return [
        case({**healthy, secrets: "1x20"}, watch, []),
        case({**healthy, secrets: "0x20"}, watch, [alert(
            "watch", {"namespace": "default", "pod": "kqs-a", "watch": "Secrets in all namespaces"},
            "keda-queue-scaler pod kqs-a cannot watch Secrets in all namespaces",
            descriptions[watch],
        )]),
        case(working, failing, []),
        case(working, stuck, []),
        case(working, saturated, []),
        case(working, slow, []),
        # One failed Job, nothing else finished: 100 %, but fewer than 3 failures: quiet.
        case({**working, succeeded: "0x20", failed: "0x9 1x11"}, failing, []),
        # 2 failed and 3 succeeded a minute: 40 % of the Jobs fail: fires, per ScaledJob.
        case({**working, failed: "0+2x20"}, failing, [alert(
            "failing", where, "40% of ScaledJob team-a/render's Jobs failed in 30 minutes",
            descriptions[failing],
        )]),
        # Work waits, nothing runs, nothing started for 15 minutes.
        case({**working, active: "0x20", starts: "5x20"}, stuck, [alert(
            "stuck", where, "Work waits for ScaledJob team-a/render and no Job starts",
            descriptions[stuck],
        )]),
        # Long Jobs still running, none started lately: work is being done.
        case({**working, starts: "5x20"}, stuck, []),
        # Nothing above the activation threshold: KEDA is right not to start Jobs.
        case({**working, queued: "0x20", active: "0x20", starts: "5x20"}, stuck, []),
        # Without --kubernetes there are no Job series: never a guess from the queue alone.
        case({**healthy, queued: "1x20"}, stuck, []),
        # 3 active + 1 pending Jobs = maxReplicaCount 4 while the queue is active: fires.
        case({**working, active: "3x20", pending: "1x20", cap: "4x20"}, saturated, [alert(
            "saturated", where,
            "ScaledJob team-a/render runs 4 Jobs, its maxReplicaCount, while work waits",
            descriptions[saturated],
        )]),
        # At the cap with nothing waiting: the last Jobs finishing, quiet.
        case({**working, active: "4x20", cap: "4x20", queued: "0x20"}, saturated, []),
        # Jobs between 1 h and 2 h: p95 = 3600 + 0.95 * 3600 = 7020 s > 3600: fires.
        case({**working, **took("7200")}, slow, [alert(
            "slow", where, "Jobs of ScaledJob team-a/render take 1h 57m 0s (p95, last hour)",
            descriptions[slow],
        )]),
    ]  # fmt: skip
