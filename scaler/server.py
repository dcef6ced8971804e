"""The grpc.aio server: ExternalScaler, grpc.health.v1, reflection, TLS/mTLS,
Prometheus /metrics, and a graceful stop.

Stop sequence (SIGTERM/SIGINT or :meth:`ScalerServer.stop`): health turns
NOT_SERVING, open streams are asked to end, the server stops accepting calls and
gives those in flight ``grace_period`` seconds, then broker connections close.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scaler.brokers.pool import ClientBudget
from scaler.credentials import CredentialStore
from scaler.documents import path
from scaler.guard import BrokerPolicy, quoted
from scaler.httpmetrics import MetricsHTTPServer
from scaler.keda.scaledjob import DEFAULT_MAX_REPLICAS
from scaler.kube.auth import Objects
from scaler.kube.cache import KubeObjects
from scaler.kube.jobs import LABEL as JOB_LABEL
from scaler.kube.jobs import POD_LABEL, JobTracker
from scaler.metadata import UnknownKey
from scaler.metrics import BoundedSeries, Metrics
from scaler.readings import Readings
from scaler.registry import KINDS, Kind, Triggers, open_adapters, open_policies
from scaler.service import SERVICE_NAME, ExternalScalerService, add_to_server
from scaler.settings import Settings, split_list
from scaler.trigger import AnyAdapter

log = logging.getLogger("scaler.server")
#: Longest the gRPC health check reports NOT_SERVING while --kubernetes watches list.
SYNC_SECONDS = 120.0


class StartupError(Exception):
    """The server cannot start; the message is one line naming the setting and cause."""


def _read(flag: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StartupError(f"{flag} {path}: {exc.strerror}") from None


def _credentials(settings: Settings) -> grpc.ServerCredentials:
    key = _read("--tls-key-file", settings.tls_key_file)
    cert = _read("--tls-cert-file", settings.tls_cert_file)
    ca = None
    if settings.tls_client_ca_file:
        ca = _read("--tls-client-ca-file", settings.tls_client_ca_file)
    # gRPC only reports a bad pair as a failed bind: check it here, with the cause.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except ssl.SSLError as exc:
        reason = (
            "the key does not match the certificate"
            if "KEY_VALUES_MISMATCH" in str(exc)
            else f"not a PEM certificate and key ({exc.reason or exc})"
        )
        raise StartupError(
            f"--tls-cert-file {settings.tls_cert_file} / --tls-key-file "
            f"{settings.tls_key_file}: {reason}"
        ) from None
    if ca is not None:
        try:
            context.load_verify_locations(cadata=ca.decode(errors="replace"))
        except (ssl.SSLError, ValueError):
            raise StartupError(
                f"--tls-client-ca-file {settings.tls_client_ca_file}: not a PEM CA bundle"
            ) from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def _check_free(host: str, port: int, flag: str) -> None:
    """Fail with the flag's name before gRPC logs a bind error of its own."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port} ({flag}): {exc.strerror}") from None


def _kube_objects(settings: Settings) -> KubeObjects | None:
    """The watches of ``--kubernetes``, from the in-cluster service account or
    ``--kubeconfig``; None without the flag."""
    if not settings.kubernetes:
        return None
    from scaler.kube.cluster import ClusterError, api_client

    try:
        api = api_client(settings.kubeconfig or None)
    except ClusterError as exc:
        raise StartupError(f"--kubernetes: {exc}") from None
    return KubeObjects(
        api,
        namespaces=split_list(settings.watch_namespaces),
        cluster_namespace=settings.keda_namespace,
    )


class WatchHealth(Collector):
    """``keda_queue_scaler_kubernetes_watch_healthy{watch}``: 1 for a watch that has
    listed its objects and is not failing (RBAC refusals, an unreachable API server)."""

    def __init__(self, watches: KubeObjects) -> None:
        self._watches = watches

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "keda_queue_scaler_kubernetes_watch_healthy",
            "1 when a --kubernetes watch has listed its objects and is not failing",
            labels=["watch"],
        )
        for what, healthy in self._watches.health():
            family.add_metric([what], 1 if healthy else 0)
        yield family


def _job_tracker(kube: KubeObjects, registry: CollectorRegistry, settings: Settings) -> JobTracker:
    """Job outcome metrics from two more watches: Jobs KEDA labels, and their Pods."""

    def pending_conditions(namespace: str, name: str) -> tuple[str, ...]:
        doc = kube.scaledjob(namespace, name) or {}
        conditions = path(doc, "spec", "scalingStrategy", "pendingPodConditions")
        return tuple(str(c) for c in conditions) if isinstance(conditions, list) else ()

    def max_replicas(namespace: str, name: str) -> int:
        given = path(kube.scaledjob(namespace, name) or {}, "spec", "maxReplicaCount")
        return given if isinstance(given, int) and given >= 0 else DEFAULT_MAX_REPLICAS

    tracker = JobTracker(
        registry,
        max_series=settings.max_metric_series,
        pending_conditions=pending_conditions,
        scaledjobs=kube.scaledjob_keys,
        max_replicas=max_replicas,
    )
    kube.add_job_watches(
        (tracker.replace_jobs, tracker.apply_job),
        (tracker.replace_pods, tracker.apply_pod),
        JOB_LABEL,
        POD_LABEL,
    )
    return tracker


class ScalerServer:
    def __init__(
        self,
        settings: Settings,
        *,
        adapters: Mapping[str, AnyAdapter] | None = None,
        registry: CollectorRegistry | None = None,
        policy: BrokerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        kube: Objects | None = None,
        kinds: Mapping[str, Kind] = KINDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``policy`` replaces the one built from ``--allow-brokers`` (tests give one
        whose resolver never asks DNS); ``clock`` times the reading cache's TTL;
        ``wall_clock`` (Unix seconds) is what a ``measure: age`` is taken against;
        ``kube`` gives the objects authenticationRefs resolve from (tests give fixed
        ones) in place of the watches ``--kubernetes`` builds; ``kinds`` is the scalerType
        table (:data:`scaler.registry.KINDS`; a test adds a toy broker)."""
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        store = (
            CredentialStore(Path(settings.credentials_dir)) if settings.credentials_dir else None
        )
        self.budget = ClientBudget(settings.max_broker_clients)
        self.watches = _kube_objects(settings)
        self.triggers = Triggers(
            adapters if adapters is not None else open_adapters(settings, self.budget, kinds),
            cache_size=settings.max_triggers,
            on_unknown=self._unknown_keys,
            credentials=store,
            policies=open_policies(settings, kinds),
            kube=kube if kube is not None else self.watches,
            kinds=kinds,
        )
        self.policy = policy or BrokerPolicy(
            split_list(settings.allow_brokers), resolve_seconds=settings.read_timeout
        )
        self.metrics = Metrics(
            self.registry,
            max_series=settings.max_metric_series,
            scaler_types=self.triggers.scaler_types,
        )
        self.jobs = (
            None if self.watches is None else _job_tracker(self.watches, self.registry, settings)
        )
        if self.watches is not None:
            self.registry.register(WatchHealth(self.watches))
        self.metrics.broker_clients.set_function(self.budget.open_count)
        self.budget.on_evict = self.metrics.broker_client_evictions.inc
        self.readings = Readings(
            metrics=self.metrics,
            ttl=settings.cache_ttl,
            timeout=settings.read_timeout,
            clock=clock,
        )
        self.service = ExternalScalerService(
            triggers=self.triggers,
            readings=self.readings,
            metrics=self.metrics,
            stream_interval=settings.stream_interval,
            policy=self.policy,
            clock=wall_clock,
        )
        self.health = health.aio.HealthServicer()
        self.port = 0
        self._warned: BoundedSeries[tuple[str, str, str]] = BoundedSeries(10_000)
        self.metrics_port = 0
        self._server: grpc.aio.Server | None = None
        self._httpd: MetricsHTTPServer | None = None
        self._stopped = asyncio.Event()
        self._sync: asyncio.Task[None] | None = None

    def _unknown_keys(
        self, namespace: str, name: str, scaler_type: str, keys: tuple[UnknownKey, ...]
    ) -> None:
        """A log line and a count per ScaledJob and key it does not know, once each
        (the last 10,000 remembered): a typo leaves a default in place silently."""
        for unknown in keys:
            seen = (namespace, name, unknown.key)
            if seen in self._warned:
                continue
            self._warned.touch(seen)
            if scaler_type in self.triggers.scaler_types:
                self.metrics.unknown_keys.labels(scaler_type).inc()
            log.warning(
                "ScaledJob %s/%s: metadata key %s",
                quoted(namespace),
                quoted(name),
                unknown.describe(scaler_type),
            )

    async def start(self) -> None:
        s = self.settings
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        add_to_server(self.service, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        address = f"[{s.host}]:{s.port}" if ":" in s.host else f"{s.host}:{s.port}"
        credentials = _credentials(s) if s.tls else None
        _check_free(s.host, s.port, "--port")
        if s.metrics_port > 0:
            _check_free(s.metrics_host, s.metrics_port, "--metrics-port")
        try:
            if credentials is not None:
                self.port = server.add_secure_port(address, credentials)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise StartupError(f"cannot listen on {address} (--port): {exc}") from None
        if s.metrics_port >= 0:
            httpd = MetricsHTTPServer(self.registry, host=s.metrics_host, port=s.metrics_port)
            try:
                await httpd.start()
            except OSError as exc:
                raise StartupError(
                    f"cannot listen on {s.metrics_host}:{s.metrics_port} (--metrics-port): "
                    f"{exc.strerror}"
                ) from None
            self._httpd = httpd
            self.metrics_port = httpd.port
        await server.start()
        self._server = server
        if self.watches is None:
            await self._serving()
        else:
            # Ready (gRPC health SERVING) once every watch has listed: calls before
            # that are answered UNAVAILABLE, saying what is still loading.
            for name in ("", SERVICE_NAME):
                await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
            self.watches.start()
            self._sync = asyncio.create_task(self._when_synced(self.watches))
        mode = "mTLS" if s.tls_client_ca_file else "TLS" if s.tls else "plaintext"
        log.info(
            "serving gRPC (%s) on %s:%d; scalerTypes: %s; metrics on %s; event loop %s",
            mode,
            s.host,
            self.port,
            ", ".join(self.triggers.scaler_types),
            f"{s.metrics_host}:{self.metrics_port}" if self._httpd else "off",
            type(asyncio.get_running_loop()).__module__.split(".")[0],
        )

    async def _serving(self) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def _when_synced(self, watches: KubeObjects) -> None:
        synced = await asyncio.to_thread(watches.wait_synced, SYNC_SECONDS)
        if self._stopped.is_set() or watches.stop_event.is_set():
            return  # stopping before the watches listed: nothing to report
        where = ", ".join(watches.namespaces) or "all namespaces"
        if synced:
            log.info("kubernetes: %d watches listed (%s)", len(watches.reflectors), where)
        else:
            log.warning(
                "kubernetes: not every watch listed within %gs (%s): %s; serving anyway, "
                "see keda_queue_scaler_kubernetes_watch_healthy",
                SYNC_SECONDS, where, "; ".join(watches.problems()) or "still listing",
            )  # fmt: skip
        await self._serving()

    async def stop(self, grace: float | None = None) -> None:
        if self._server is None or self._stopped.is_set():
            await self._stopped.wait()
            return
        grace = self.settings.grace_period if grace is None else grace
        log.info("stopping: health NOT_SERVING, %gs grace for calls in flight", grace)
        await self.health.enter_graceful_shutdown()
        self.service.begin_shutdown()
        await self._server.stop(grace)
        await self.readings.aclose()
        await self.triggers.aclose()
        if self.watches is not None:
            self.watches.stop()
        if self._sync is not None:
            await self._sync  # ends at once: wait_synced sees the stop event
        if self._httpd is not None:
            await self._httpd.stop()
        log.info("stopped")
        self._stopped.set()

    async def abandon(self) -> None:
        """Release what a failed start opened (pools, the /metrics listener)."""
        if self._httpd is not None:
            await self._httpd.stop()
        await self.readings.aclose()
        await self.triggers.aclose()
        if self.watches is not None:
            self.watches.stop()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def serve(settings: Settings) -> None:
    """Run :func:`run` on the event loop ``settings.event_loop`` names. uvloop's
    libuv loop wakes grpc.aio's completion queue with less work per call than
    asyncio's selector loop (bench/warm_polls.py --event-loop, docs/performance.md)."""
    if settings.event_loop == "uvloop":
        import uvloop

        uvloop.run(run(settings))
    else:
        asyncio.run(run(settings))


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before start: a signal is never missed
        loop.add_signal_handler(sig, stop.set)
    server = ScalerServer(settings)
    try:
        await server.start()
    except StartupError:
        await server.abandon()
        raise
    # Everything loaded so far (modules, the server) lives as long as the process: out
    # of the collector's sight, a collection no longer walks the whole heap that the
    # broker clients' imports built, which otherwise costs more CPU than a warm poll.
    gc.freeze()
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    await server.stop()
