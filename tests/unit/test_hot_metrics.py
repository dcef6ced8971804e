"""The per-call series, kept as plain tables (scaler.metrics.HotPath), expose what
prometheus_client's own Counter, Histogram and Gauge expose for the same events."""

from __future__ import annotations

import random
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.samples import Sample

from scaler.metrics import _RPC_BUCKETS, Metrics

P = "keda_queue_scaler"


def samples(registry: CollectorRegistry, names: set[str]) -> list[Sample]:
    """Every sample of the named families, ``_created`` left out (ours has none),
    sorted so that order within a family does not matter."""
    found = [
        s
        for family in registry.collect()
        if family.name in names
        for s in family.samples
        if not s.name.endswith("_created")
    ]
    return sorted(found, key=lambda s: (s.name, sorted(s.labels.items())))


def test_the_same_events_expose_what_prometheus_clients_own_types_expose() -> None:
    ours = CollectorRegistry()
    metrics = Metrics(ours, max_series=1000, scaler_types=["redis", "sqs"])
    theirs = CollectorRegistry()
    requests = Counter(f"{P}_rpc_requests", "x", ["method", "code"], registry=theirs)
    duration = Histogram(f"{P}_rpc_duration_seconds", "x", ["method"],
                         buckets=_RPC_BUCKETS, registry=theirs)  # fmt: skip
    hits = Counter(f"{P}_cache_hits", "x", ["scaler_type"], registry=theirs)
    workload = ["scaled_namespace", "scaled_name", "metric"]
    value = Gauge(f"{P}_workload_value", "x", workload, registry=theirs)
    active = Gauge(f"{P}_workload_active", "x", workload, registry=theirs)
    age = Gauge(f"{P}_oldest_item_age_seconds", "x", workload, registry=theirs)
    calls = Counter(f"{P}_workload_calls", "x", ["scaled_namespace", "scaled_name", "code"],
                    registry=theirs)  # fmt: skip
    for method in ("GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive"):
        requests.labels(method, "OK")
        duration.labels(method)
    for kind in ("redis", "sqs"):
        hits.labels(kind)

    rng = random.Random(7)
    # every bucket bound exactly (le is inclusive), between bounds, and past the last
    seconds = [*_RPC_BUCKETS, *(rng.uniform(0, 12) for _ in range(300)), 99.0]
    for i, s in enumerate(seconds):
        method = rng.choice(["GetMetricSpec", "GetMetrics", "IsActive"])
        code = rng.choice(["OK", "OK", "OK", "INVALID_ARGUMENT", "UNAVAILABLE"])
        metrics.observe_rpc(method, code, s)
        requests.labels(method, code).inc()
        duration.labels(method).observe(s)
        kind = rng.choice(["redis", "sqs"])
        metrics.cache_hit(kind)
        hits.labels(kind).inc()
        series = (f"team-{i % 3}", f"job-{i % 7}", f"s0-redis-q{i % 2}")
        v, on = float(rng.randint(0, 50)), rng.random() < 0.5
        aged = rng.uniform(0, 100) if i % 2 else None
        metrics.set_workload(*series, v, on, age=aged)
        value.labels(*series).set(v)
        active.labels(*series).set(1 if on else 0)
        if aged is not None:
            age.labels(*series).set(aged)
        metrics.workload_call(series[0], series[1], code)
        calls.labels(series[0], series[1], code).inc()

    names = {
        f"{P}_rpc_requests", f"{P}_rpc_duration_seconds", f"{P}_cache_hits",
        f"{P}_workload_value", f"{P}_workload_active", f"{P}_oldest_item_age_seconds",
        f"{P}_workload_calls",
    }  # fmt: skip
    got, want = samples(ours, names), samples(theirs, names)
    assert len(got) > 100
    assert got == want


def test_a_scrape_in_another_thread_never_sees_a_table_change_under_it() -> None:
    """/metrics renders in a worker thread while the event loop keeps answering: new
    workloads (and evictions) change the tables' sizes during the scrape."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_series=50, scaler_types=["redis"])
    stop = threading.Event()
    errors: list[BaseException] = []
    scrapes = 0

    def scrape() -> None:
        nonlocal scrapes
        try:
            while not stop.is_set():
                list(registry.collect())
                scrapes += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=scrape)
    thread.start()
    try:
        i = 0
        while scrapes < 200 and not errors:  # as many scrapes as it takes, no timing
            i += 1
            metrics.set_workload("team", f"job-{i}", "m", 1.0, True)
            metrics.workload_call("team", f"job-{i}", "OK")
            metrics.observe_rpc(f"Method{i % 97}", "OK", 0.001)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert scrapes >= 200
