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

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from scaler import __version__

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


class Metrics:
    """The scaler's metrics. Every labelled series a dashboard panel or alert divides or
    rates over is created at zero for each ``scaler_types`` entry and RPC method, so a
    panel shows 0 (not "No data") before the first event and ``rate()`` sees the
    first increment."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_series: int = 500,
        scaler_types: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        self._workloads: BoundedSeries[tuple[str, ...]] = BoundedSeries(max_series)
        self._calls: BoundedSeries[tuple[str, ...]] = BoundedSeries(max_series)
        # Labelled children, looked up once per series: prometheus_client's labels()
        # costs a lock and a tuple of str() per call, on every RPC. The
        # workload ones live exactly as long as their bounded series; the others are
        # few (methods x codes, scaler types x outcomes).
        self._children: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._workload_children: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._call_children: dict[tuple[str, ...], Any] = {}
        self.rpc_requests = Counter(
            f"{_PREFIX}_rpc_requests", "gRPC calls answered", ["method", "code"], registry=registry
        )
        self.rpc_duration = Histogram(
            f"{_PREFIX}_rpc_duration_seconds",
            "Time to answer a gRPC call (unary) or to the end of a stream",
            ["method"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )
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
        self.cache_hits = Counter(
            f"{_PREFIX}_cache_hits",
            "Answers served from the TTL cache",
            ["scaler_type"],
            registry=registry,
        )
        self.coalesced_waits = Counter(
            f"{_PREFIX}_coalesced_waits",
            "Callers that joined a broker read already in flight",
            ["scaler_type"],
            registry=registry,
        )
        self.workload_value = Gauge(
            f"{_PREFIX}_workload_value",
            "Last value read for a trigger, per ScaledJob or ScaledObject that asked",
            ["scaled_namespace", "scaled_name", "metric"],
            registry=registry,
        )
        self.workload_active = Gauge(
            f"{_PREFIX}_workload_active",
            "1 when the last value was above the activation threshold, per ScaledJob or "
            "ScaledObject that asked",
            ["scaled_namespace", "scaled_name", "metric"],
            registry=registry,
        )
        self.oldest_item_age = Gauge(
            f"{_PREFIX}_oldest_item_age_seconds",
            "Seconds the oldest ready item has waited, per trigger with measure: age, from "
            "the broker's own timestamps (SQS: CloudWatch's ApproximateAgeOfOldestMessage, "
            "a minute or more behind; RabbitMQ: the head message's timestamp property, as "
            "current as the management API's statistics)",
            ["scaled_namespace", "scaled_name", "metric"],
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
        self.workload_calls = Counter(
            f"{_PREFIX}_workload_calls",
            "KEDA's calls answered per ScaledJob (or ScaledObject), by gRPC code (OK or the "
            "error's; StreamIsActive counted when it fails); a failed read also removes the "
            "workload's value, activity and age series",
            ["scaled_namespace", "scaled_name", "code"],
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
        for method in RPC_METHODS:
            self.rpc_requests.labels(method, "OK")
            self.rpc_duration.labels(method)
        for scaler_type in scaler_types:
            self.broker_reads.labels(scaler_type, "ok")
            self.broker_read_duration.labels(scaler_type)
            self.cache_hits.labels(scaler_type)
            self.coalesced_waits.labels(scaler_type)
            self.unknown_keys.labels(scaler_type)

    def observe_rpc(self, method: str, code: str, seconds: float) -> None:
        found = self._children.get(("rpc", method, code))
        if found is None:
            found = (self.rpc_requests.labels(method, code), self.rpc_duration.labels(method))
            self._children["rpc", method, code] = found
        found[0].inc()
        found[1].observe(seconds)

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
        found = self._children.get(("hit", scaler_type))
        if found is None:
            found = self._children["hit", scaler_type] = (self.cache_hits.labels(scaler_type),)
        found[0].inc()

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
        old = self._workloads.touch(series)
        if old is not None:
            gauges = (self.workload_value, self.workload_active, self.oldest_item_age)
            self._drop(gauges, old, self.workload_series_evicted)
            self._workload_children.pop(old, None)
        found = self._workload_children.get(series)
        if found is None:
            found = (self.workload_value.labels(*series), self.workload_active.labels(*series))
            self._workload_children[series] = found
        found[0].set(value)
        found[1].set(1 if active else 0)
        if age is not None:
            self.oldest_item_age.labels(*series).set(age)

    def workload_failed(self, namespace: str, name: str, code: str, *, metric: str | None) -> None:
        """A call for the workload failed with ``code``: counted; and when it was a read
        (``metric`` given), that metric's last values are no longer current, so their
        series go (Prometheus marks them stale) until a read succeeds again."""
        ns, nm = bounded_label(namespace), bounded_label(name)
        if metric is not None:
            series = (ns, nm, bounded_label(metric))
            self._workload_children.pop(series, None)
            if self._workloads.discard(series):
                for gauge in (self.workload_value, self.workload_active, self.oldest_item_age):
                    with contextlib.suppress(KeyError):
                        gauge.remove(*series)
        self.workload_call(namespace, name, code)

    def workload_call(self, namespace: str, name: str, code: str) -> None:
        """One call for the workload answered with ``code``."""
        labels = (bounded_label(namespace), bounded_label(name), code)
        old = self._calls.touch(labels)
        if old is not None:
            self._drop((self.workload_calls,), old, self.workload_series_evicted)
            self._call_children.pop(old, None)
        found = self._call_children.get(labels)
        if found is None:
            found = self._call_children[labels] = self.workload_calls.labels(*labels)
        found.inc()

    @staticmethod
    def _drop(gauges: Iterable[Gauge | Counter], labels: tuple[str, ...], evicted: Counter) -> None:
        for gauge in gauges:
            gauge.remove(*labels)
        evicted.inc()
