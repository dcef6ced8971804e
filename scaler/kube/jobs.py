"""Job outcomes per ScaledJob, next to the queue depth the scaler reports.

With ``--kubernetes`` the scaler watches Jobs labelled ``scaledjob.keda.sh/name``
and their Pods (label ``job-name``), and exports, per ScaledJob (labels
``scaled_namespace`` and ``scaled_name``):

- ``keda_queue_scaler_scaledjob_jobs{state}``: Jobs not finished, ``active`` (a Pod
  Running or Succeeded) or ``pending`` (KEDA's pending: no such Pod, or with
  ``pendingPodConditions`` not all of them true), counted as KEDA's scale executor
  counts them;
- ``keda_queue_scaler_scaledjob_jobs_finished_total{outcome,reason}``: Jobs that
  finished while the scaler watched, ``succeeded`` or ``failed`` with the Failed
  condition's reason (``BackoffLimitExceeded``, ``DeadlineExceeded``, ...);
- ``keda_queue_scaler_scaledjob_job_start_seconds``: from a Job's creation to its first
  container start (time to start);
- ``keda_queue_scaler_scaledjob_job_duration_seconds{outcome}``: from the Job's start to
  its completion or failure.

Jobs already finished (or started) when the scaler first lists them are not counted
again, so a restart does not replay history. At most ``max_series`` ScaledJobs are
exported (the least recently active dropped first, counted in
``keda_queue_scaler_scaledjob_series_evicted_total``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scaler.documents import Doc, mapping, mappings, path
from scaler.keda.scaledjob import DEFAULT_MAX_REPLICAS, JobState, PodState, count_jobs
from scaler.metrics import BoundedSeries, bounded_label

LABEL = "scaledjob.keda.sh/name"
POD_LABEL = "job-name"
_PREFIX = "keda_queue_scaler_scaledjob"
_START_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
_DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
MAX_JOBS = 50_000
MAX_PODS = 100_000


def _time(text: object) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class _Job:
    namespace: str
    name: str
    scaledjob: str
    created: float | None
    started: float | None  # status.startTime
    conditions: dict[str, tuple[str, str, float | None]] = field(default_factory=dict)
    completed: float | None = None

    @property
    def finished(self) -> str:
        """``succeeded``, ``failed`` or ``""``."""
        if self.conditions.get("Complete", ("",))[0] == "True":
            return "succeeded"
        if self.conditions.get("Failed", ("",))[0] == "True":
            return "failed"
        return ""


@dataclass
class _Pod:
    job: str
    phase: str
    conditions: dict[str, str]
    started: float | None  # the first container start


def _job(doc: Doc) -> _Job:
    meta, status = mapping(doc.get("metadata")), mapping(doc.get("status"))
    conditions = {
        str(c.get("type")): (str(c.get("status")), str(c.get("reason") or ""),
                             _time(c.get("lastTransitionTime")))
        for c in mappings(status.get("conditions"))
    }  # fmt: skip
    return _Job(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        scaledjob=str(mapping(meta.get("labels")).get(LABEL, "")),
        created=_time(meta.get("creationTimestamp")),
        started=_time(status.get("startTime")),
        conditions=conditions,
        completed=_time(status.get("completionTime")),
    )


def _pod(doc: Doc) -> _Pod:
    meta, status = mapping(doc.get("metadata")), mapping(doc.get("status"))
    starts = []
    for c in mappings(status.get("containerStatuses")):
        for state in ("running", "terminated"):
            if t := _time(path(c, "state", state, "startedAt")):
                starts.append(t)
    return _Pod(
        job=str(mapping(meta.get("labels")).get(POD_LABEL, "")),
        phase=str(status.get("phase") or "Pending"),
        conditions={
            str(c.get("type")): str(c.get("status")) for c in mappings(status.get("conditions"))
        },
        started=min(starts) if starts else None,
    )


class JobTracker(Collector):
    """Job and Pod events in, Prometheus series out. Thread-safe: watches call the
    handlers from their threads, scrapes call :meth:`collect`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_series: int = 500,
        pending_conditions: Callable[[str, str], Sequence[str]] = lambda ns, name: (),
        scaledjobs: Callable[[], Sequence[tuple[str, str]]] = tuple,
        max_replicas: Callable[[str, str], int] = lambda ns, name: DEFAULT_MAX_REPLICAS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._by_job: dict[tuple[str, str], set[tuple[str, str]]] = {}  # Job -> its Pods
        self._counted: set[tuple[str, str]] = set()  # Jobs whose end was seen
        self._started: set[tuple[str, str]] = set()  # Jobs whose start was seen
        self._synced = {"jobs": False, "pods": False}
        self._pending_conditions = pending_conditions
        self._scaledjobs = scaledjobs
        self._max_replicas = max_replicas
        self._clock = clock
        self._max_series = max_series
        self._series: BoundedSeries[tuple[str, str]] = BoundedSeries(max_series)
        self._labelled: dict[tuple[str, str], set[tuple[str, ...]]] = {}  # ScaledJob -> series
        self.finished = Counter(
            f"{_PREFIX}_jobs_finished",
            "Jobs of a ScaledJob that finished, by outcome and (for failed) reason",
            ["scaled_namespace", "scaled_name", "outcome", "reason"],
            registry=registry,
        )
        self.start_seconds = Histogram(
            f"{_PREFIX}_job_start_seconds",
            "Seconds from a Job's creation to its first container start",
            ["scaled_namespace", "scaled_name"],
            buckets=_START_BUCKETS,
            registry=registry,
        )
        self.duration_seconds = Histogram(
            f"{_PREFIX}_job_duration_seconds",
            "Seconds from a Job's start to its completion or failure",
            ["scaled_namespace", "scaled_name", "outcome"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.evicted = Counter(
            f"{_PREFIX}_series_evicted",
            "ScaledJobs dropped from the Job series to keep label cardinality bounded",
            registry=registry,
        )
        registry.register(self)

    # -- series bookkeeping ---------------------------------------------------
    def _labels(self, namespace: str, scaledjob: str, metric: str, *rest: str) -> tuple[str, ...]:
        pair = (bounded_label(namespace), bounded_label(scaledjob))
        if (old := self._series.touch(pair)) is not None:
            for metric_name, *values in self._labelled.pop(old, set()):
                getattr(self, metric_name).remove(*values)
            self.evicted.inc()
        self._labelled.setdefault(pair, set()).add((metric, *pair, *rest))
        return pair + tuple(rest)

    def _count_end(self, job: _Job, observe: bool = True) -> None:
        outcome = job.finished
        if not outcome or not job.scaledjob:
            return
        key = (job.namespace, job.name)
        if key in self._counted:
            return
        self._counted.add(key)
        if not observe or not all(self._synced.values()):
            return  # finished before we watched: history, not news
        reason = job.conditions["Failed"][1] if outcome == "failed" else ""
        self.finished.labels(
            *self._labels(job.namespace, job.scaledjob, "finished", outcome, reason)
        ).inc()
        end = job.completed if outcome == "succeeded" else job.conditions["Failed"][2]
        if job.started is not None and end is not None:
            self.duration_seconds.labels(
                *self._labels(job.namespace, job.scaledjob, "duration_seconds", outcome)
            ).observe(max(0.0, end - job.started))

    def _check_start(self, job: _Job, observe: bool = True) -> None:
        key = (job.namespace, job.name)
        if key in self._started or not job.scaledjob:
            return
        starts = [
            p.started if p.started is not None else self._clock()
            for p in self._pods_of(key)
            if p.phase in ("Running", "Succeeded") or p.started is not None  # a failed one too
        ]
        if not starts:
            return  # not started yet (a Pod's event may still be on its way)
        self._started.add(key)
        if not observe or not all(self._synced.values()) or job.created is None:
            return
        self.start_seconds.labels(
            *self._labels(job.namespace, job.scaledjob, "start_seconds")
        ).observe(max(0.0, min(starts) - job.created))

    def _pods_of(self, job: tuple[str, str]) -> list[_Pod]:
        return [self._pods[k] for k in self._by_job.get(job, ()) if k in self._pods]

    def _put_pod(self, key: tuple[str, str], pod: _Pod) -> None:
        self._pods[key] = pod
        self._by_job.setdefault((key[0], pod.job), set()).add(key)

    def _drop_pod(self, key: tuple[str, str]) -> None:
        pod = self._pods.pop(key, None)
        if pod is not None:
            owners = self._by_job.get((key[0], pod.job), set())
            owners.discard(key)
            if not owners:
                self._by_job.pop((key[0], pod.job), None)

    # -- watch handlers (scaler.kube.cache.Reflector) ---------------------------
    def replace_jobs(self, items: list[dict[str, object]], first: bool) -> None:
        with self._lock:
            self._jobs = {}
            for doc in items[:MAX_JOBS]:
                job = _job(doc)
                self._jobs[(job.namespace, job.name)] = job
            self._synced["jobs"] = True
            self._counted &= set(self._jobs)  # forget Jobs deleted while not watching
            self._started &= set(self._jobs)
            for job in self._jobs.values():  # a first listing is history, not news
                self._check_start(job, observe=not first)
                self._count_end(job, observe=not first)

    def apply_job(self, event: str, doc: dict[str, object]) -> None:
        job = _job(doc)
        key = (job.namespace, job.name)
        with self._lock:
            if event == "DELETED":
                self._jobs.pop(key, None)
                self._counted.discard(key)
                self._started.discard(key)
                return
            if key not in self._jobs and len(self._jobs) >= MAX_JOBS:
                return
            self._jobs[key] = job
            self._check_start(job)
            self._count_end(job)

    def replace_pods(self, items: list[dict[str, object]], first: bool) -> None:
        with self._lock:
            self._pods, self._by_job = {}, {}
            for doc in items[:MAX_PODS]:
                meta = mapping(doc.get("metadata"))
                self._put_pod(
                    (str(meta.get("namespace", "")), str(meta.get("name", ""))), _pod(doc)
                )
            self._synced["pods"] = True
            for job in self._jobs.values():
                self._check_start(job, observe=not first)

    def apply_pod(self, event: str, doc: dict[str, object]) -> None:
        meta = mapping(doc.get("metadata"))
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        with self._lock:
            if event == "DELETED":
                self._drop_pod(key)
                return
            if key not in self._pods and len(self._pods) >= MAX_PODS:
                return
            self._drop_pod(key)
            pod = _pod(doc)
            self._put_pod(key, pod)
            job = self._jobs.get((key[0], pod.job))
            if job is not None:
                self._check_start(job)

    # -- scrape -------------------------------------------------------------------
    def counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(running, pending) per ScaledJob, as KEDA's scale executor counts them."""
        with self._lock:
            states: dict[tuple[str, str], list[JobState]] = {}
            for job in self._jobs.values():
                if not job.scaledjob:
                    continue
                pods = tuple(
                    PodState(p.phase, p.conditions)
                    for p in self._pods_of((job.namespace, job.name))
                )
                conditions = {t: s for t, (s, _, _) in job.conditions.items()}
                states.setdefault((job.namespace, job.scaledjob), []).append(
                    JobState(conditions, pods)
                )
        out = {pair: (0, 0) for pair in self._scaledjobs()}
        for pair, jobs in states.items():
            out[pair] = count_jobs(jobs, tuple(self._pending_conditions(*pair)))
        return out

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{_PREFIX}_jobs",
            "Jobs of a ScaledJob not finished: active (a Pod running or done) or pending",
            labels=["scaled_namespace", "scaled_name", "state"],
        )
        cap = GaugeMetricFamily(
            f"{_PREFIX}_max_replicas",
            "The ScaledJob's spec.maxReplicaCount (100 when unset): with active plus pending "
            "Jobs at it, KEDA creates no more however much work waits",
            labels=["scaled_namespace", "scaled_name"],
        )
        counts = sorted(self.counts().items())[: self._max_series]
        for (namespace, name), (running, pending) in counts:
            labels = [bounded_label(namespace), bounded_label(name)]
            family.add_metric([*labels, "active"], running - pending)
            family.add_metric([*labels, "pending"], pending)
            cap.add_metric(labels, self._max_replicas(namespace, name))
        yield family
        yield cap

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            f"{_PREFIX}_jobs", "", labels=["scaled_namespace", "scaled_name", "state"]
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}_max_replicas", "", labels=["scaled_namespace", "scaled_name"]
        )
