"""A real control plane and the real KEDA operator on loopback, for end-to-end tests.

``Cluster`` starts, on free 127.0.0.1 ports, with certificates made at start:
etcd; kube-apiserver (RBAC on, and the aggregation layer: a front-proxy CA and the
requestheader flags); kube-controller-manager (so Jobs get Pods, Job status is real
and the HPA controller scales Deployments, syncing every 2 s); KEDA's CRDs from
KEDA's own module; the KEDA operator, run out of cluster with a kubeconfig; KEDA's
metrics adapter, registered as the ``v1beta1.external.metrics.k8s.io`` APIService
through an ExternalName Service on ``localhost`` (so the API server reaches it on
loopback); and :class:`NodeStandIn`, which plays the kubelet of
one Ready node: it binds Pods to itself and runs each container as a local process
after a configurable start delay (so Jobs stay pending for a while, as real ones
do), reporting phase and exit code in the Pod status.

Binaries come from ``scripts/e2e-cluster`` (built from Go modules, cached). Every
process is started in its own session and killed, with its children, by
:meth:`Cluster.stop`, which also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.brokers import free_port
from tests.certs import make_pki
from tests.kedago import ROOT, crd_dir

NODE = "e2e-node"
#: the Service the external metrics APIService names, as in KEDA's manifests
ADAPTER_SERVICE = "keda-metrics-apiserver"
START_TIMEOUT = 180.0


def build_binaries() -> Path:
    """The folder with etcd, kube-apiserver, kube-controller-manager, keda-operator and
    keda-adapter."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "e2e-cluster")],
        capture_output=True, text=True, timeout=5400, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"scripts/e2e-cluster failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip())


class Exited(RuntimeError):
    """A control-plane process died: waiting longer cannot help."""


def wait_for(what: str, check: Callable[[], Any], timeout: float = START_TIMEOUT) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exited:
            raise
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:g} s (last: {last!r})")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Cluster:
    workdir: Path
    bin: Path
    start_delay: float = 2.0
    #: container image -> local argv prefix (the container's args are appended)
    images: dict[str, list[str]] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    node: NodeStandIn | None = None

    # ---- start ------------------------------------------------------------------
    def start(self) -> None:
        atexit.register(self.stop)
        self.pki = make_pki(
            self.workdir / "pki",
            client_cn="kube-admin",
            client_orgs=("system:masters",),
            server_names=("localhost", "kubernetes", "kubernetes.default",
                          "kubernetes.default.svc"),
        )  # fmt: skip
        self.front_proxy = make_pki(self.workdir / "front-proxy", client_cn="front-proxy-client")
        self._service_account_keys()
        self._etcd()
        self._apiserver()
        self.kubeconfig = self.write_kubeconfig(
            self.workdir / "admin.kubeconfig", self.pki.client_cert, self.pki.client_key
        )
        self._controller_manager()
        self._crds()
        self.core().create_namespace({"metadata": {"name": "keda"}})
        self._keda()
        self._metrics_adapter()
        self.node = NodeStandIn(self, start_delay=self.start_delay, images=self.images)
        self.node.start()
        wait_for("the node", lambda: self.node is not None and self.node.registered.is_set())

    def _spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> Process:
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        proc = subprocess.Popen(
            list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})}, cwd=self.workdir,
        )  # fmt: skip
        handle.close()
        process = Process(name, proc, log)
        self.processes.append(process)
        return process

    def _service_account_keys(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sa_key = self.workdir / "pki" / "sa.key"
        self.sa_pub = self.workdir / "pki" / "sa.pub"
        self.sa_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        self.sa_pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn("etcd", [
            str(self.bin / "etcd"), "--name", "e2e", "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{peer}",
            "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
            "--log-level", "warn", "--unsafe-no-fsync",
        ])  # fmt: skip
        wait_for("etcd", lambda: self._alive(proc) and self._http(f"{self.etcd_url}/health"))

    def _apiserver(self) -> None:
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        proc = self._spawn("kube-apiserver", [
            str(self.bin / "kube-apiserver"),
            "--etcd-servers", self.etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(port),
            "--tls-cert-file", str(self.pki.server_cert),
            "--tls-private-key-file", str(self.pki.server_key),
            "--client-ca-file", str(self.pki.ca),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(self.sa_pub),
            "--service-account-signing-key-file", str(self.sa_key),
            "--service-cluster-ip-range", "10.96.0.0/24",
            "--authorization-mode", "Node,RBAC",
            "--endpoint-reconciler-type", "none",
            # the aggregation layer, for KEDA's metrics adapter (external.metrics.k8s.io)
            "--requestheader-client-ca-file", str(self.front_proxy.ca),
            "--requestheader-allowed-names", "front-proxy-client",
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", str(self.front_proxy.client_cert),
            "--proxy-client-key-file", str(self.front_proxy.client_key),
            "--cert-dir", str(self.workdir / "apiserver-certs"),
            "--profiling=false",
        ])  # fmt: skip
        wait_for("kube-apiserver", lambda: self._alive(proc) and self._readyz())

    def _controller_manager(self) -> None:
        proc = self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"),
            "--kubeconfig", str(self.kubeconfig),
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
            "--leader-elect=false",
            "--service-account-private-key-file", str(self.sa_key),
            "--root-ca-file", str(self.pki.ca),
            "--use-service-account-credentials=false",
            # No node heartbeats here: the stand-in node must not be tainted away.
            "--controllers", "*,-node-lifecycle-controller,-node-ipam-controller",
            "--concurrent-job-syncs", "5",
            # the HPA reads KEDA's external metrics every 2 s (default 15 s), so the
            # ScaledObject tests wait seconds, not minutes, for each step
            "--horizontal-pod-autoscaler-sync-period", "2s",
            "--profiling=false",
        ])  # fmt: skip
        self._wait_alive(proc, "kube-controller-manager", lambda: self._default_service_account())

    def _crds(self) -> None:
        from kubernetes import client

        ext = client.ApiextensionsV1Api(self.api())
        names = []
        for path in sorted(crd_dir().glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            ext.create_custom_resource_definition(crd)
            names.append(crd["metadata"]["name"])

        def established() -> bool:
            for name in names:
                crd = ext.read_custom_resource_definition(name)
                conditions = {c.type: c.status for c in (crd.status.conditions or [])}
                if conditions.get("Established") != "True":
                    return False
            return True

        wait_for("KEDA's CRDs", established)

    def _keda(self) -> None:
        # one certificate for the operator's metrics service and the adapter, server and
        # client both, as KEDA's own cert rotation makes it
        self.keda_certs = certs = make_pki(
            self.workdir / "keda-certs",
            server_names=("localhost", f"{ADAPTER_SERVICE}.keda.svc"),
            server_also_client=True,
        )
        ca_dir = self.workdir / "keda-ca"
        ca_dir.mkdir()
        self.keda_health = f"http://127.0.0.1:{free_port()}"
        self.keda_metrics = f"http://127.0.0.1:{free_port()}"
        self.keda_metrics_service = f"127.0.0.1:{free_port()}"
        proc = self._spawn(
            "keda-operator",
            [
                str(self.bin / "keda-operator"),
                "--leader-elect=false",
                "--health-probe-bind-address",
                self.keda_health.removeprefix("http://"),
                "--metrics-bind-address",
                self.keda_metrics.removeprefix("http://"),
                "--metrics-service-bind-address",
                self.keda_metrics_service,
                "--cert-dir",
                str(certs.ca.parent),
                "--ca-dir",
                str(ca_dir),
                "--enable-cert-rotation=false",
                "--zap-log-level",
                "debug",
                "--zap-encoder",
                "json",
            ],
            env={
                "KUBECONFIG": str(self.kubeconfig),
                "WATCH_NAMESPACE": "",
                "POD_NAMESPACE": "keda",
                "KEDA_CLUSTER_OBJECT_NAMESPACE": "keda",
            },
        )
        self.keda = proc
        self._wait_alive(
            proc, "the KEDA operator", lambda: self._http(f"{self.keda_health}/readyz")
        )

    def _metrics_adapter(self) -> None:
        """KEDA's metrics adapter (cmd/adapter) on loopback, as KEDA's own manifests run
        it (config/metrics-server), registered as the external metrics APIService.

        The API server finds an APIService's backend through its Service; an
        ExternalName Service on ``localhost`` keeps that on loopback (Endpoints may not
        hold a loopback address), and the caBundle pins the adapter's certificate,
        made for ``keda-metrics-apiserver.keda.svc``, the name the API server checks."""
        from kubernetes import client

        port = free_port()
        certs = self.keda_certs
        self.adapter = proc = self._spawn(
            "keda-adapter",
            [
                str(self.bin / "keda-adapter"),
                "--bind-address", "127.0.0.1", "--secure-port", str(port),
                "--tls-cert-file", str(certs.server_cert),
                "--tls-private-key-file", str(certs.server_key),
                "--cert-dir", str(certs.ca.parent),
                "--client-ca-file", str(certs.ca),
                "--lister-kubeconfig", str(self.kubeconfig),
                "--authentication-kubeconfig", str(self.kubeconfig),
                "--authorization-kubeconfig", str(self.kubeconfig),
                "--metrics-service-address", self.keda_metrics_service,
                "--port", str(free_port()),
                "--zap-log-level", "info", "--zap-encoder", "json",
            ],
            env={
                "KUBECONFIG": str(self.kubeconfig),
                "WATCH_NAMESPACE": "",
                "POD_NAMESPACE": "keda",
                "KEDA_CLUSTER_OBJECT_NAMESPACE": "keda",
            },
        )  # fmt: skip
        self.core().create_namespaced_service("keda", {
            "metadata": {"name": ADAPTER_SERVICE},
            "spec": {"type": "ExternalName", "externalName": "localhost",
                     "ports": [{"name": "https", "port": port}]},
        })  # fmt: skip
        registration = client.ApiregistrationV1Api(self.api())
        registration.create_api_service({
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {
                "group": "external.metrics.k8s.io", "version": "v1beta1",
                "groupPriorityMinimum": 100, "versionPriority": 100,
                "service": {"name": ADAPTER_SERVICE, "namespace": "keda", "port": port},
                "caBundle": base64.b64encode(certs.ca.read_bytes()).decode(),
            },
        })  # fmt: skip

        def available() -> bool:
            service = registration.read_api_service("v1beta1.external.metrics.k8s.io")
            conditions = {c.type: c for c in (service.status.conditions or [])}
            ok = conditions.get("Available")
            return ok is not None and ok.status == "True"

        self._wait_alive(proc, "KEDA's metrics adapter (APIService Available)", available)

    # ---- helpers ----------------------------------------------------------------
    def _alive(self, proc: Process) -> bool:
        if not proc.alive():
            raise Exited(f"{proc.name} exited ({proc.proc.returncode}):\n{proc.tail()}")
        return True

    def _wait_alive(self, proc: Process, what: str, check: Callable[[], Any]) -> None:
        wait_for(what, lambda: self._alive(proc) and check())

    @staticmethod
    def _http(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    def _ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return context

    def _readyz(self) -> bool:
        with urllib.request.urlopen(f"{self.server}/readyz", timeout=2, context=self._ssl()) as r:
            return bool(r.status == 200)

    def _default_service_account(self) -> bool:
        return bool(self.core().read_namespaced_service_account("default", "default"))

    def write_kubeconfig(self, path: Path, cert: Path, key: Path, *, token: str = "") -> Path:
        user: dict[str, str] = (
            {"token": token} if token else {"client-certificate": str(cert), "client-key": str(key)}
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {
                "server": self.server, "certificate-authority": str(self.pki.ca)}}],
            "users": [{"name": "e2e", "user": user}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
            "current-context": "e2e",
        }  # fmt: skip
        path.write_text(yaml.safe_dump(config))
        return path

    def api(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api())

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def check_alive(self) -> None:
        """Fail loudly when a control-plane process died mid-test."""
        for process in self.processes:
            self._alive(process)


@dataclass
class Running:
    pod: str
    namespace: str
    uid: str
    proc: subprocess.Popen[bytes]
    container: str


class NodeStandIn:
    """The kubelet of one Ready node, played by local processes.

    Pods with no node are bound here; a bound Pod's first container starts as a
    local process after ``start_delay`` seconds (until then the Pod is Pending); its
    exit code sets the phase (0 = Succeeded). Container images map to local commands
    through ``images``; env values come from the spec, Secrets and ConfigMaps, as a
    kubelet would resolve them."""

    def __init__(
        self, cluster: Cluster, *, start_delay: float, images: dict[str, list[str]]
    ) -> None:
        self.cluster = cluster
        self.start_delay = start_delay
        self.images = images
        self.registered = threading.Event()
        self._stop = threading.Event()
        self._first_seen: dict[str, float] = {}
        self._running: dict[str, Running] = {}
        self._done: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="node-stand-in", daemon=True)
        self.logs = cluster.workdir / "pods"
        self.logs.mkdir(exist_ok=True)
        self.started_pods = 0
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        for running in list(self._running.values()):
            self._kill(running)

    def _loop(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.cluster.api())
        self._register(core)
        while not self._stop.is_set():
            try:
                self._sync(core)
            except Exception as exc:
                self.errors.append(repr(exc))
            self._stop.wait(0.2)

    def _register(self, core: Any) -> None:
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
        core.create_node({"metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}}})
        now = _now()
        status = {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "e2e stand-in", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeInfo": {"machineID": "e2e", "systemUUID": "e2e", "bootID": "e2e",
                         "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "local://",
                         "kubeletVersion": "v0.0.0-standin", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
        }  # fmt: skip
        core.patch_node_status(NODE, {"status": status})
        self.registered.set()

    def _sync(self, core: Any) -> None:
        pods = core.list_pod_for_all_namespaces().items
        seen = set()
        now = time.monotonic()
        for pod in pods:
            uid = pod.metadata.uid
            seen.add(uid)
            if pod.metadata.deletion_timestamp is not None:
                if uid in self._running:
                    running = self._running.pop(uid)
                    self._kill(running)
                    # a kubelet reports the killed container before the Pod goes: the Job
                    # controller (with a podFailurePolicy) replaces only terminal Pods
                    self._done.add(uid)
                    self._finish(core, running, 128 + signal.SIGKILL)
                with contextlib.suppress(Exception):
                    core.delete_namespaced_pod(
                        pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                    )
                continue
            if not pod.spec.node_name:
                core.create_namespaced_pod_binding(
                    pod.metadata.name,
                    pod.metadata.namespace,
                    {"metadata": {"name": pod.metadata.name},
                     "target": {"kind": "Node", "name": NODE}},
                    _preload_content=False,
                )  # fmt: skip
                self._first_seen.setdefault(uid, now)
                continue
            if pod.spec.node_name != NODE or uid in self._done:
                continue
            first = self._first_seen.setdefault(uid, now)
            if uid not in self._running and now - first >= self.start_delay:
                self._start(core, pod)
        for uid, running in list(self._running.items()):
            code = running.proc.poll()
            if code is not None:
                del self._running[uid]
                self._done.add(uid)
                self._finish(core, running, code)
        for uid in list(self._running):
            if uid not in seen:  # deleted while running
                self._kill(self._running.pop(uid))

    def _env(self, core: Any, pod: Any, container: Any) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.cluster.workdir),
               "PYTHONUNBUFFERED": "1", "HOSTNAME": pod.metadata.name}  # fmt: skip
        ns = pod.metadata.namespace
        for var in container.env or []:
            if var.value is not None:
                env[var.name] = var.value
            elif var.value_from is not None and var.value_from.secret_key_ref is not None:
                ref = var.value_from.secret_key_ref
                data = core.read_namespaced_secret(ref.name, ns).data or {}
                env[var.name] = base64.b64decode(data[ref.key]).decode()
            elif var.value_from is not None and var.value_from.config_map_key_ref is not None:
                ref = var.value_from.config_map_key_ref
                env[var.name] = (core.read_namespaced_config_map(ref.name, ns).data or {})[ref.key]
            elif var.value_from is not None and var.value_from.field_ref is not None:
                path = var.value_from.field_ref.field_path
                env[var.name] = {"metadata.name": pod.metadata.name,
                                 "metadata.namespace": ns}.get(path, "")  # fmt: skip
        return env

    def _argv(self, container: Any, env: dict[str, str]) -> list[str]:
        image = container.image.rsplit(":", 1)[0] if ":" in container.image else container.image
        prefix = self.images.get(image) or self.images.get(container.image)
        if prefix is None:
            raise RuntimeError(f"no local command for image {container.image}")

        def expand(arg: str) -> str:
            # the kubelet's $(VAR) in command and args: a defined variable's value,
            # "$$" an escaped "$", anything else kept as written
            return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                          lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), arg)  # fmt: skip

        return [*prefix, *map(expand, [*(container.command or []), *(container.args or [])])]

    def _start(self, core: Any, pod: Any) -> None:
        container = pod.spec.containers[0]
        log = self.logs / f"{pod.metadata.namespace}_{pod.metadata.name}.log"
        try:
            env = self._env(core, pod, container)
            argv = self._argv(container, env)
        except Exception as exc:
            self._done.add(pod.metadata.uid)
            log.write_text(f"cannot start: {exc}\n")
            self._patch(core, pod.metadata.name, pod.metadata.namespace, container.name, "Failed",
                        terminated={"exitCode": 128, "reason": "StartError"})  # fmt: skip
            return
        with log.open("ab") as handle:
            proc = subprocess.Popen(
                argv, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.cluster.workdir,
            )  # fmt: skip
        self.started_pods += 1
        self._running[pod.metadata.uid] = Running(
            pod.metadata.name, pod.metadata.namespace, pod.metadata.uid, proc, container.name
        )
        self._patch(core, pod.metadata.name, pod.metadata.namespace, container.name, "Running")

    def _finish(self, core: Any, running: Running, code: int) -> None:
        phase = "Succeeded" if code == 0 else "Failed"
        with contextlib.suppress(Exception):
            self._patch(core, running.pod, running.namespace, running.container, phase,
                        terminated={"exitCode": code,
                                    "reason": "Completed" if code == 0 else "Error"})  # fmt: skip

    def _patch(
        self, core: Any, name: str, namespace: str, container: str, phase: str,
        terminated: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        now = _now()
        running = phase == "Running"
        state = (
            {"running": {"startedAt": now}}
            if running
            else {"terminated": {**(terminated or {}), "startedAt": now, "finishedAt": now}}
        )
        ready = "True" if running else "False"
        conditions = [
            {"type": t, "status": s, "lastTransitionTime": now}
            for t, s in (("PodScheduled", "True"), ("Initialized", "True"),
                         ("ContainersReady", ready), ("Ready", ready))
        ]  # fmt: skip
        status = {
            "phase": phase, "startTime": now, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
            "conditions": conditions,
            "containerStatuses": [{"name": container, "ready": running, "restartCount": 0,
                                   "image": "local", "imageID": "", "state": state}],
        }  # fmt: skip
        core.patch_namespaced_pod_status(name, namespace, {"status": status})

    @staticmethod
    def _kill(running: Running) -> None:
        if running.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.proc.pid, signal.SIGKILL)
            running.proc.wait(10)


def keda_log(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """The KEDA operator's JSON log lines."""
    for line in cluster.keda.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                yield json.loads(line)


def framework_apps() -> dict[str, list[str]]:
    """The local stand-ins for the framework examples' app images: their commands
    (``rq``, ``arq``, ``celery``, ``dramatiq``, ``huey_consumer``, ``node``,
    ``sidekiq``) run in
    examples/frameworks/ with the frameworks of
    ``make peers`` on PATH, as in an image with the app and its framework installed."""
    apps = ROOT / "examples" / "frameworks"
    peers = ROOT / ".venv-peers"
    node_modules = ROOT / "tests" / "frameworks" / "bullmq" / "node_modules"
    system = "/usr/local/bin:/usr/bin:/bin"

    def app(*paths: Path, **env: str) -> list[str]:
        path = ":".join([*map(str, paths), system])
        return ["env", "-C", str(apps), f"PATH={path}", f"PYTHONPATH={apps}",
                *(f"{k}={v}" for k, v in env.items())]  # fmt: skip

    return {
        "ghcr.io/example/rq-app": app(peers / "main" / "bin"),
        "ghcr.io/example/arq-app": app(peers / "arq" / "bin"),
        "ghcr.io/example/bullmq-app": app(NODE_PATH=str(node_modules)),
        "ghcr.io/example/sidekiq-app": app(),  # Debian's ruby-sidekiq
        **{
            f"ghcr.io/example/{name}-app": app(peers / "main" / "bin")
            for name in ("celery", "dramatiq", "huey")
        },
    }


def python_worker() -> list[str]:
    """The local stand-in for the example worker image."""
    return [sys.executable, str(ROOT / "examples" / "worker" / "worker.py")]


def work_app() -> dict[str, list[str]]:
    """The local stand-in for an app image with keda-queue-scaler installed (the
    ``work-*`` examples): its command finds ``keda-queue-scaler`` on PATH."""
    path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    return {"ghcr.io/example/resize-app": ["env", f"PATH={path}"]}
