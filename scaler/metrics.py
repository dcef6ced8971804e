"""Prometheus metrics, registered on an injected registry.

Names and labels (the Grafana dashboard and docs rely on them):

- ``keda_queue_scaler_rpc_requests_total{method,code}`` and
  ``keda_queue_scaler_rpc_duration_seconds{method}``: every gRPC call we answer.
- ``keda_queue_scaler_broker_reads_total{scaler_type,outcome}`` and
  ``keda_queue_scaler_broker_read_duration_seconds{scaler_type}``: calls to a broker;
  ``outcome`` is ``ok`` or a lower-case gRPC code name.
- ``keda_queue_scaler_cache_hits_total{scaler_type}``: answers served from the TTL cache.
- ``keda_queue_scaler_coalesced_waits_total{scaler_type}``: callers that joined a read
  already in flight.
- ``keda_queue_scaler_workload_value{scaled_namespace,scaled_name,metric}`` and
  ``keda_queue_scaler_workload_active{...}``: the last value read and whether it passed
  the activation threshold, per ScaledJob (or ScaledObject) that asked for it, from
  KEDA's request: two teams' queues of one name never share a series. At most
  ``max_series`` of these are kept, least recently updated dropped first (evictions
  counted in
  ``keda_queue_scaler_workload_series_evicted_total``). With ``--kubernetes``,
  ``scaler.kube.jobs`` adds the ScaledJob's Job outcomes under the same two labels.
- ``keda_queue_scaler_workload_calls_total{scaled_namespace,scaled_name,code}``: calls
  answered per workload and gRPC code, OK included, so alerts take error ratios
  (bounded by ``max_series``); a failed read removes that metric's workload series:
  never a stale value.
- ``keda_queue_scaler_unknown_metadata_keys_total{scaler_type}``: metadata keys a
  trigger carries that its scalerType does not read (typos such as ``listLenght``),
  counted once per ScaledJob and key; the log names them.
- ``keda_queue_scaler_stream_is_active_streams``: StreamIsActive streams open.
- ``keda_queue_scaler_broker_clients`` and
  ``keda_queue_scaler_broker_client_evictions_total``: broker clients open across all
  triggers, and the idle ones closed to stay within ``--max-broker-clients``.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, Generic, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from scaler import __version__

_go_float = cast("Callable[[float], str]", floatToGoString)  # the le labels' format

_PREFIX = "keda_queue_scaler"
_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


#: Label values longer than this are cut and suffixed with a digest of the whole.
MAX_LABEL_CHARS = 128


def bounded_label(value: str) -> str:
    """A label value of at most MAX_LABEL_CHARS characters that still tells long
    values apart: the first 100 characters, ``~`` and 16 hex digits of a SHA-256."""
    if len(value) <= MAX_LABEL_CHARS:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{value[:100]}~{digest}"


K = TypeVar("K", bound=Hashable)


class BoundedSeries(Generic[K]):
    """At most ``limit`` keys, least recently touched dropped first: ``touch`` returns
    the key it evicted (its series are the caller's to remove), or None."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._keys: OrderedDict[K, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def discard(self, key: K) -> bool:
        """Forget ``key``; True if it was kept."""
        return self._keys.pop(key, 0) is None

    def touch(self, key: K) -> K | None:
        if key in self._keys:
            self._keys.move_to_end(key)
            return None
        self._keys[key] = None
        if len(self._keys) > self._limit:
            old, _ = self._keys.popitem(last=False)
            return old
        return None


#: The RPCs KEDA calls; their OK series exist from the start.
RPC_METHODS = ("GetMetricSpec", "GetMetrics", "IsActive", "StreamIsActive")

_WORKLOAD_LABELS = ["scaled_namespace", "scaled_name", "metric"]
_HELP = {
    "rpc_requests": "gRPC calls answered",
    "rpc_duration_seconds": "Time to answer a gRPC call (unary) or to the end of a stream",
    "cache_hits": "Answers served from the TTL cache",
    "workload_value": "Last value read for a trigger, per ScaledJob or ScaledObject that asked",
    "workload_active": "1 when the last value was above the activation threshold, per "
    "ScaledJob or ScaledObject that asked",
    "oldest_item_age_seconds": "Seconds the oldest ready item has waited, per trigger with "
    "measure: age, from the broker's own timestamps (SQS: CloudWatch's "
    "ApproximateAgeOfOldestMessage, a minute or more behind; RabbitMQ: the head message's "
    "timestamp property, as current as the management API's statistics)",
    "workload_calls": "KEDA's calls answered per ScaledJob (or ScaledObject), by gRPC code (OK "
    "or the error's; StreamIsActive counted when it fails); a failed read also removes the "
    "workload's value, activity and age series",
}


class HotPath(Collector):
    """The series every call touches, kept as plain numbers and turned into Prometheus
    families only when scraped.

    KEDA makes three calls per ScaledJob per poll, and each updated about six
    prometheus_client children, each behind its own lock: a third of the work a cached
    answer cost. These tables are written only on the event loop's thread; a scrape
    (rendered in a worker thread) first copies each one, a single step under the GIL,
    so it never sees a table change size under it. As with prometheus_client's own
    Histogram, a scrape can land between a histogram's bucket and its sum.
    """

    def __init__(self, scaler_types: Iterable[str]) -> None:
        #: (method, code) -> calls
        self.rpc_counts: dict[tuple[str, str], int] = {(m, "OK"): 0 for m in RPC_METHODS}
        #: method -> per-bucket counts (not cumulative; +Inf last), then the sum
        self.rpc_durations: dict[str, list[float]] = {m: self._empty() for m in RPC_METHODS}
        #: scaler_type -> answers from the cache
        self.cache_hits: dict[str, int] = {kind: 0 for kind in scaler_types}
        #: (namespace, name, metric) -> (value, active, age or None)
        self.workloads: dict[tuple[str, ...], tuple[float, int, float | None]] = {}
        #: (namespace, name, code) -> calls
        self.workload_calls: dict[tuple[str, ...], int] = {}

    @staticmethod
    def _empty() -> list[float]:
        return [0.0] * (len(_RPC_BUCKETS) + 2)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        self.rpc_counts[key] = self.rpc_counts.get(key, 0) + 1
        found = self.rpc_durations.get(method)
        if found is None:
            found = self.rpc_durations[method] = self._empty()
        found[bisect.bisect_left(_RPC_BUCKETS, seconds)] += 1  # le: the bound is inclusive
        found[-1] += seconds

    def describe(self) -> Iterator[Metric]:
        return self._families({}, {}, {}, {}, {})

    def collect(self) -> Iterator[Metric]:
        durations = {m: list(b) for m, b in self.rpc_durations.copy().items()}
        return self._families(
            self.rpc_counts.copy(),
            durations,
            self.cache_hits.copy(),
            self.workloads.copy(),
            self.workload_calls.copy(),
        )

    @staticmethod
    def _families(
        counts: dict[tuple[str, str], int],
        durations: dict[str, list[float]],
        hits: dict[str, int],
        workloads: dict[tuple[str, ...], tuple[float, int, float | None]],
        calls: dict[tuple[str, ...], int],
    ) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{_PREFIX}_rpc_requests", _HELP["rpc_requests"], labels=["method", "code"]
        )
        for labels, n in counts.items():
            requests.add_metric(labels, n)
        yield requests
        duration = HistogramMetricFamily(
            f"{_PREFIX}_rpc_duration_seconds", _HELP["rpc_duration_seconds"], labels=["method"]
        )
        bounds = [_go_float(b) for b in _RPC_BUCKETS] + ["+Inf"]
        for method, per_bucket in durations.items():
            cumulative: list[tuple[str, float]] = []
            total = 0.0
            for bound, in_bucket in zip(bounds, per_bucket[:-1], strict=True):
                total += in_bucket
                cumulative.append((bound, total))
            duration.add_metric([method], cumulative, per_bucket[-1])
        yield duration
        cache = CounterMetricFamily(
            f"{_PREFIX}_cache_hits", _HELP["cache_hits"], labels=["scaler_type"]
        )
        for kind, n in hits.items():
            cache.add_metric([kind], n)
        yield cache
        value = GaugeMetricFamily(
            f"{_PREFIX}_workload_value", _HELP["workload_value"], labels=_WORKLOAD_LABELS
        )
        active = GaugeMetricFamily(
            f"{_PREFIX}_workload_active", _HELP["workload_active"], labels=_WORKLOAD_LABELS
        )
        age = GaugeMetricFamily(
            f"{_PREFIX}_oldest_item_age_seconds",
            _HELP["oldest_item_age_seconds"],
            labels=_WORKLOAD_LABELS,
        )
        for series, (v, a, seconds) in workloads.items():
            value.add_metric(series, v)
            active.add_metric(series, a)
            if seconds is not None:
                age.add_metric(series, seconds)
        yield from (value, active, age)
        per_workload = CounterMetricFamily(
            f"{_PREFIX}_workload_calls",
            _HELP["workload_calls"],
            labels=["scaled_namespace", "scaled_name", "code"],
        )
        for call_labels, n in calls.items():
            per_workload.add_metric(call_labels, n)
        yield per_workload


class Metrics:
    """The scaler's metrics. Every labelled series a dashboard panel or alert divides or
    rates over is created at zero for each ``scaler_types`` entry and RPC method, so a
    panel shows 0 (not "No data") before the first event and ``rate()`` sees the
    first increment. The series each call touches live in ``hot`` (a HotPath); the
    rest are prometheus_client's own."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_series: int = 500,
        scaler_types: Iterable[str] = (),
    ) -> None:
        scaler_types = tuple(scaler_types)
        self.registry = registry
        self._workloads: BoundedSeries[tuple[str, ...]] = BoundedSeries(max_series)
        self._calls: BoundedSeries[tuple[str, ...]] = BoundedSeries(max_series)
        # Labelled children of the rarer series, looked up once per series:
        # prometheus_client's labels() costs a lock and a tuple of str() per call.
        self._children: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self.hot = HotPath(scaler_types)
        registry.register(self.hot)
        self.broker_reads = Counter(
            f"{_PREFIX}_broker_reads",
            "Reads sent to a broker, by outcome",
            ["scaler_type", "outcome"],
            registry=registry,
        )
        self.broker_read_duration = Histogram(
            f"{_PREFIX}_broker_read_duration_seconds",
            "Broker read latency",
            ["scaler_type"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )
        self.coalesced_waits = Counter(
            f"{_PREFIX}_coalesced_waits",
            "Callers that joined a broker read already in flight",
            ["scaler_type"],
            registry=registry,
        )
        self.workload_series_evicted = Counter(
            f"{_PREFIX}_workload_series_evicted",
            "Per-workload series dropped to keep label cardinality bounded",
            registry=registry,
        )
        self.broker_clients = Gauge(
            f"{_PREFIX}_broker_clients",
            "Broker clients open, across all triggers (at most --max-broker-clients)",
            registry=registry,
        )
        self.broker_client_evictions = Counter(
            f"{_PREFIX}_broker_client_evictions",
            "Idle broker clients closed to stay within --max-broker-clients",
            registry=registry,
        )
        self.unknown_keys = Counter(
            f"{_PREFIX}_unknown_metadata_keys",
            "Trigger metadata keys its scalerType does not read (ignored, as KEDA does), once "
            "per ScaledJob and key",
            ["scaler_type"],
            registry=registry,
        )
        self.streams_open = Gauge(
            f"{_PREFIX}_stream_is_active_streams", "StreamIsActive streams open", registry=registry
        )
        Info(f"{_PREFIX}_build", "Build information", registry=registry).info(
            {"version": __version__}
        )
        for scaler_type in scaler_types:
            self.broker_reads.labels(scaler_type, "ok")
            self.broker_read_duration.labels(scaler_type)
            self.coalesced_waits.labels(scaler_type)
            self.unknown_keys.labels(scaler_type)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        self.hot.observe_rpc(method, code, seconds)

    def observe_read(self, scaler_type: str, outcome: str, seconds: float) -> None:
        found = self._children.get(("read", scaler_type, outcome))
        if found is None:
            found = (
                self.broker_reads.labels(scaler_type, outcome),
                self.broker_read_duration.labels(scaler_type),
            )
            self._children["read", scaler_type, outcome] = found
        found[0].inc()
        found[1].observe(seconds)

    def cache_hit(self, scaler_type: str) -> None:
        hits = self.hot.cache_hits
        hits[scaler_type] = hits.get(scaler_type, 0) + 1

    def coalesced_wait(self, scaler_type: str) -> None:
        found = self._children.get(("wait", scaler_type))
        if found is None:
            found = (self.coalesced_waits.labels(scaler_type),)
            self._children["wait", scaler_type] = found
        found[0].inc()

    def set_workload(
        self,
        namespace: str,
        name: str,
        metric: str,
        value: float,
        active: bool,
        *,
        age: float | None = None,
    ) -> None:
        """The workload's series; ``age`` (seconds) for a trigger with ``measure: age``."""
        series = (bounded_label(namespace), bounded_label(name), bounded_label(metric))
        self.set_series(series, value, active, age)

    def set_series(
        self, series: tuple[str, str, str], value: float, active: bool, age: float | None
    ) -> None:
        """:meth:`set_workload` for labels already bounded (``workload_labels``)."""
        old = self._workloads.touch(series)
        if old is not None:
            del self.hot.workloads[old]
            self.workload_series_evicted.inc()
        self.hot.workloads[series] = (value, 1 if active else 0, age)

    def workload_failed(self, namespace: str, name: str, code: str, *, metric: str | None) -> None:
        """A call for the workload failed with ``code``: counted; and when it was a read
        (``metric`` given), that metric's last values are no longer current, so their
        series go (Prometheus marks them stale) until a read succeeds again."""
        if metric is not None:
            series = (bounded_label(namespace), bounded_label(name), bounded_label(metric))
            if self._workloads.discard(series):
                del self.hot.workloads[series]
        self.workload_call(namespace, name, code)

    def workload_call(self, namespace: str, name: str, code: str) -> None:
        """One call for the workload answered with ``code``."""
        self.count_call((bounded_label(namespace), bounded_label(name), code))

    def count_call(self, labels: tuple[str, str, str]) -> None:
        """:meth:`workload_call` for labels already bounded: (namespace, name, code)."""
        old = self._calls.touch(labels)
        calls = self.hot.workload_calls
        if old is not None:
            del calls[old]
            self.workload_series_evicted.inc()
        calls[labels] = calls.get(labels, 0) + 1
