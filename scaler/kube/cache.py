"""Watches that keep what ``serve --kubernetes`` needs in memory.

Each resource is listed, then watched from the list's resourceVersion; a watch that
ends (its server-side timeout, a dropped connection, ``410 Gone``) is resumed or the
resource re-listed, with a backoff of 1 s doubling to 30 s. Every request has a
client-side timeout. The threads are daemons; :meth:`KubeObjects.stop` asks them to
end at their next wake-up.

Memory is bounded by what the cluster holds of KEDA's own kinds (ScaledJobs,
ScaledObjects, TriggerAuthentications, ClusterTriggerAuthentications) and by the
Secrets and ConfigMaps those name: Secrets and ConfigMaps are listed and watched as
metadata only (``PartialObjectMetadata``: names and versions, never their data), and
only those a TriggerAuthentication or a ScaledJob's container refers to are read, by
name, when a reference appears or the watch reports a new version (in the background,
never in an RPC).

Namespaces: all of them (a ClusterRole), or only ``namespaces`` (a Role in each),
plus KEDA's cluster-objects namespace for ClusterTriggerAuthentications' Secrets.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from scaler.documents import Doc, mapping, mappings
from scaler.errors import AuthError, KubeNotReady
from scaler.keda.env import UNKNOWN, Unknown
from scaler.keda.manifest import job_containers
from scaler.kube.auth import container_env
from scaler.kube.cluster import Response

log = logging.getLogger("scaler.kube")

KEDA = ("keda.sh", "v1alpha1")
WATCH_SECONDS = 240  # server-side end of each watch; a fresh one resumes from its version
REQUEST_TIMEOUT = 30.0  # seconds for a list or get
_ABSENT = object()  # a Secret or ConfigMap known not to exist

#: A watch's handlers: ``replace(items, first)`` for each listing, ``apply(type, object)``
#: for each event.
Replace = Callable[[list[dict[str, object]], bool], None]
Apply = Callable[[str, dict[str, object]], None]
Handlers = tuple[Replace, Apply]


def _key(doc: Doc) -> tuple[str, str]:
    meta = mapping(doc.get("metadata"))
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(doc: Doc) -> str:
    """An object's (or a list's) resourceVersion; "" when it has none."""
    return str(mapping(doc.get("metadata")).get("resourceVersion") or "")


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


class Reflector:
    """List, then watch, one resource (in one namespace or all), forever.

    ``replace(items, first)`` gets every listing; ``apply(type, object)`` every
    watch event (``ADDED``, ``MODIFIED``, ``DELETED``). Objects are plain dicts, as
    the API server sent them."""

    def __init__(
        self,
        what: str,
        call: Callable[..., Response],
        *,
        replace: Replace,
        apply: Apply,
        stop: threading.Event,
        label_selector: str = "",
        metadata_only: bool = False,
    ) -> None:
        self.what = what
        self._call = call
        self._replace = replace
        self._apply = apply
        self._stop = stop
        self._selector = label_selector
        self._metadata_only = metadata_only
        self.synced = threading.Event()
        self.error = ""

    def _kwargs(self, watching: bool = False) -> dict[str, object]:
        kwargs: dict[str, object] = {"label_selector": self._selector} if self._selector else {}
        if self._metadata_only:
            # names, versions and labels only: the API server leaves the data out
            kind = "PartialObjectMetadata" if watching else "PartialObjectMetadataList"
            kwargs["_headers"] = {"Accept": f"application/json;as={kind};g=meta.k8s.io;v=v1"}
        return kwargs

    def _list(self) -> str:
        response = self._call(
            **self._kwargs(), _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
        body = json.loads(response.data)
        items = [dict(i) for i in mappings(body.get("items"))]
        self._replace(items, not self.synced.is_set())
        self.synced.set()
        self.error = ""
        return _version(body)

    def run(self) -> None:
        from kubernetes import watch

        backoff = 1.0
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._list()
                stream = watch.Watch().stream(
                    self._call,
                    **self._kwargs(watching=True),
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True,
                    _request_timeout=WATCH_SECONDS + REQUEST_TIMEOUT,
                )
                for event in stream:
                    if self._stop.is_set():
                        return
                    kind, raw = event.get("type"), mapping(event.get("raw_object"))
                    if kind == "ERROR":
                        version = ""  # e.g. 410 Gone: the version is too old, list again
                        break
                    version = _version(raw) or version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._apply(str(kind), dict(raw))
                backoff = 1.0
            except Exception as exc:
                status = _status(exc)
                if status == 410:
                    version = ""
                    continue
                # The status and exception type only: a body may quote an object.
                self.error = f"{self.what}: {status or type(exc).__name__}"
                log.warning("watch of %s failed (%s); retrying in %gs", self.what,
                            status or type(exc).__name__, backoff)  # fmt: skip
                version = ""
                if self._stop.wait(backoff):
                    return
                backoff = min(30.0, backoff * 2)


def _decode(doc: Doc, kind: str) -> dict[str, str]:
    raw = mapping(doc.get("data"))
    if kind == "Secret":
        return {str(k): base64.b64decode(str(v)).decode("utf-8", "replace") for k, v in raw.items()}
    return {str(k): str(v) for k, v in raw.items()}


def references(doc: Doc, cluster_namespace: str) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of the Secrets and ConfigMaps an object can make the
    resolver read: a (Cluster)TriggerAuthentication's target refs, and the env and
    envFrom sources of a ScaledJob's containers when a trigger has an
    authenticationRef (for TriggerAuthentication ``env`` parameters)."""
    namespace, _ = _key(doc)
    spec = mapping(doc.get("spec"))
    out: set[tuple[str, str, str]] = set()
    kind = doc.get("kind")
    if kind in ("TriggerAuthentication", "ClusterTriggerAuthentication"):
        where = cluster_namespace if kind == "ClusterTriggerAuthentication" else namespace
        for field_name, ref_kind in (
            ("secretTargetRef", "Secret"),
            ("configMapTargetRef", "ConfigMap"),
        ):
            for e in mappings(spec.get(field_name)):
                out.add((ref_kind, where, str(e.get("name", ""))))
    elif kind == "ScaledJob" and any(
        t.get("authenticationRef") for t in mappings(spec.get("triggers"))
    ):

        def named(ref_kind: str, ns: str, name: str) -> Unknown:  # records, reads nothing
            out.add((ref_kind, ns, name))
            return UNKNOWN

        for c in job_containers(spec):  # the same walk the resolver makes
            container_env(c, namespace, named)
    return out


class KubeObjects:
    """The objects :mod:`scaler.kube.auth` resolves from, kept current by watches.

    ``api`` is a ``kubernetes.client.ApiClient``. ``namespaces`` empty: watch all
    namespaces. ``extra`` adds reflectors over the same stop event (the Job
    tracker's)."""

    def __init__(
        self,
        api: object,
        *,
        namespaces: Sequence[str] = (),
        cluster_namespace: str = "keda",
    ) -> None:
        self.api = api
        self.cluster_namespace = cluster_namespace
        self.namespaces = tuple(namespaces)
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._docs: dict[str, dict[tuple[str, str], dict[str, object]]] = {
            k: {}
            for k in (
                "ScaledJob",
                "ScaledObject",
                "TriggerAuthentication",
                "ClusterTriggerAuthentication",
            )
        }
        # (kind, ns, name) -> its data, or _ABSENT for one known not to exist
        self._data: dict[tuple[str, str, str], dict[str, str] | object] = {}
        self._refused: dict[tuple[str, str, str], str] = {}
        self._wanted: set[tuple[str, str, str]] = set()
        self._fetching: set[tuple[str, str, str]] = set()
        # resourceVersions: the newest the metadata watch reported, and the one held
        self._seen: dict[tuple[str, str, str], str] = {}
        self._held: dict[tuple[str, str, str], str] = {}
        self._fetcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kube-fetch")
        self.reflectors: list[Reflector] = []
        self._threads: list[threading.Thread] = []
        self._build()

    # -- reflectors -----------------------------------------------------------
    def _build(self) -> None:
        from kubernetes import client

        custom = client.CustomObjectsApi(self.api)
        core = client.CoreV1Api(self.api)
        scopes: tuple[str | None, ...] = self.namespaces or (None,)
        for plural, kind in (("scaledjobs", "ScaledJob"), ("scaledobjects", "ScaledObject"),
                             ("triggerauthentications", "TriggerAuthentication")):  # fmt: skip
            for ns in scopes:
                call = (
                    functools.partial(custom.list_cluster_custom_object, *KEDA, plural)
                    if ns is None
                    else functools.partial(custom.list_namespaced_custom_object, *KEDA, ns, plural)
                )
                self.add(
                    f"{plural} in {ns or 'all namespaces'}", call, *self._doc_handlers(kind, ns)
                )
        self.add(
            "clustertriggerauthentications",
            functools.partial(
                custom.list_cluster_custom_object, *KEDA, "clustertriggerauthentications"
            ),
            *self._doc_handlers("ClusterTriggerAuthentication", None),
        )
        data_scopes = scopes
        if self.namespaces and self.cluster_namespace not in self.namespaces:
            data_scopes = (*scopes, self.cluster_namespace)
        for kind, all_call, ns_call in (
            ("Secret", core.list_secret_for_all_namespaces, core.list_namespaced_secret),
            ("ConfigMap", core.list_config_map_for_all_namespaces, core.list_namespaced_config_map),
        ):
            for ns in data_scopes:
                call = all_call if ns is None else functools.partial(ns_call, ns)
                self.add(
                    f"{kind}s in {ns or 'all namespaces'}",
                    call,
                    *self._data_handlers(kind, ns),
                    metadata_only=True,
                )

    def add(
        self,
        what: str,
        call: Callable[..., Response],
        replace: Replace,
        apply: Apply,
        label_selector: str = "",
        *,
        metadata_only: bool = False,
    ) -> Reflector:
        reflector = Reflector(
            what, call, replace=replace, apply=apply, stop=self.stop_event,
            label_selector=label_selector, metadata_only=metadata_only,
        )  # fmt: skip
        self.reflectors.append(reflector)
        return reflector

    def _doc_handlers(self, kind: str, namespace: str | None) -> Handlers:
        store = self._docs[kind]

        def replace(items: list[dict[str, object]], first: bool) -> None:
            with self._lock:
                for k in [k for k in store if namespace is None or k[0] == namespace]:
                    del store[k]
                for doc in items:
                    doc.setdefault("kind", kind)
                    store[_key(doc)] = doc
            for doc in items:
                self._want(references(doc, self.cluster_namespace))

        def apply(event: str, doc: dict[str, object]) -> None:
            doc.setdefault("kind", kind)
            with self._lock:
                if event == "DELETED":
                    store.pop(_key(doc), None)
                else:
                    store[_key(doc)] = doc
            if event != "DELETED":
                self._want(references(doc, self.cluster_namespace))

        return replace, apply

    def _data_handlers(self, kind: str, namespace: str | None) -> Handlers:
        """Secrets and ConfigMaps are watched as metadata only (never a whole list of
        their data in memory): a listing or event that shows a new resourceVersion of a
        wanted one fetches it by name, in the background."""

        def replace(items: list[dict[str, object]], first: bool) -> None:
            listed = {(kind, *_key(doc)): _version(doc) for doc in items}
            todo = []
            with self._lock:
                for key in self._wanted:
                    if key[0] != kind or (namespace is not None and key[1] != namespace):
                        continue
                    if key not in listed:
                        self._data[key] = _ABSENT
                        self._held.pop(key, None)
                        self._refused.pop(key, None)
                        continue
                    self._seen[key] = listed[key]
                    if self._held.get(key) != listed[key]:
                        todo.append(key)
            self._fetch_soon(todo)

        def apply(event: str, doc: dict[str, object]) -> None:
            key = (kind, *_key(doc))
            with self._lock:
                if key not in self._wanted:
                    return
                if event == "DELETED":
                    self._data[key] = _ABSENT
                    self._held.pop(key, None)
                    self._seen.pop(key, None)
                    return
                self._seen[key] = _version(doc)
                stale = self._held.get(key) != self._seen[key]
            if stale:
                self._fetch_soon([key])

        return replace, apply

    def _fetch_soon(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Read each of ``keys`` by name in the background, unless a read is under way."""
        if self.stop_event.is_set():
            return  # stopping: the fetcher takes no more work
        with self._lock:
            todo = [k for k in keys if k not in self._fetching]
            self._fetching.update(todo)
        for key in todo:
            try:
                self._fetcher.submit(self._fetch, key)
            except RuntimeError:  # shut down between the check and here
                return

    def _want(self, keys: Iterable[tuple[str, str, str]]) -> None:
        if self.stop_event.is_set():
            return  # stopping: the fetcher takes no more work
        with self._lock:
            new = [k for k in keys if k not in self._wanted and k[2]]
            self._wanted.update(new)
            unread = [k for k in new if k not in self._data]
        self._fetch_soon(unread)

    def _fetch(self, key: tuple[str, str, str]) -> None:
        """One read by name of a referenced Secret or ConfigMap: when a reference
        appears, and when the metadata watch reports a version not yet held."""
        from kubernetes import client

        kind, namespace, name = key
        core = client.CoreV1Api(self.api)
        call = core.read_namespaced_secret if kind == "Secret" else core.read_namespaced_config_map
        doc: Doc | None = None
        status: int | None = None
        try:
            response = call(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            doc = mapping(json.loads(response.data))
        except Exception as exc:
            status = _status(exc)
            if status not in (403, 404):
                log.warning("reading %s %s/%s failed (%s)", kind, namespace, name,
                            status or type(exc).__name__)  # fmt: skip
        self._fetched(key, doc, status)

    def _fetched(self, key: tuple[str, str, str], doc: Doc | None, status: int | None) -> None:
        """A read by name ended: ``doc`` as read, or the HTTP ``status`` it failed with."""
        held = _version(doc) if doc else ""
        with self._lock:
            self._fetching.discard(key)
            if doc is not None:
                self._data[key] = _decode(doc, key[0])
                self._held[key] = held
                self._refused.pop(key, None)
            elif status == 404:
                self._data[key] = _ABSENT
            elif status == 403:
                self._refused[key] = "forbidden"
            # the watch saw a newer version while this read was under way: read again
            again = doc is not None and self._seen.get(key, held) != held
        if again:
            self._fetch_soon([key])

    def start(self) -> None:
        for reflector in self.reflectors:
            thread = threading.Thread(
                target=reflector.run, name=f"watch {reflector.what}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        self._fetcher.shutdown(wait=False, cancel_futures=True)

    def wait_synced(self, timeout: float) -> bool:
        """Whether every reflector listed once within ``timeout`` seconds (False at
        once when stopping)."""
        deadline = time.monotonic() + timeout
        for reflector in self.reflectors:
            while not reflector.synced.wait(0.1):
                if time.monotonic() > deadline or self.stop_event.is_set():
                    return False
        return True

    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    def health(self) -> list[tuple[str, bool]]:
        """(watch, healthy) for each watch: listed at least once and not failing now."""
        return [(r.what, r.synced.is_set() and not r.error) for r in self.reflectors]

    def problems(self) -> list[str]:
        return [r.error for r in self.reflectors if r.error]

    # -- the resolver's view (scaler.kube.auth.Objects) -----------------------
    def _ready(self, what: str) -> None:
        if not self.synced():
            pending = [r.what for r in self.reflectors if not r.synced.is_set()]
            raise KubeNotReady(
                f"the scaler has not yet listed {', '.join(pending[:3])} from the Kubernetes "
                f"API (needed for {what}); KEDA retries on its next poll"
                + (f" (last error: {'; '.join(self.problems()[:2])})" if self.problems() else "")
            )

    def watches(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces

    def scaled(self, namespace: str, name: str) -> list[Doc]:
        if not self.watches(namespace):
            return []
        self._ready(f"{namespace}/{name}")
        with self._lock:
            return [d for kind in ("ScaledJob", "ScaledObject")
                    if (d := self._docs[kind].get((namespace, name))) is not None]  # fmt: skip

    def trigger_authentication(self, namespace: str, name: str) -> Doc | None:
        with self._lock:
            return self._docs["TriggerAuthentication"].get((namespace, name))

    def cluster_trigger_authentication(self, name: str) -> Doc | None:
        with self._lock:
            return self._docs["ClusterTriggerAuthentication"].get(("", name))

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        key = (kind, namespace, name)
        with self._lock:
            value = self._data.get(key)
            refused = self._refused.get(key)
        if value is _ABSENT:
            return None
        if isinstance(value, dict):
            return value
        if refused:
            raise AuthError(
                f"the scaler may not read {kind} {namespace}/{name} ({refused}): grant its "
                "ServiceAccount get, list and watch on it (the chart's RBAC does, in the "
                "namespaces it lists)"
            )
        self._want([key])
        self._fetch_soon([key])  # wanted but unread (a read failed): read again, in the background
        raise KubeNotReady(
            f"the scaler is loading {kind} {namespace}/{name} from the Kubernetes API; KEDA "
            "retries on its next poll"
        )

    def add_job_watches(
        self,
        jobs: Handlers,
        pods: Handlers,
        job_label: str,
        pod_label: str,
    ) -> None:
        """Watches of the Jobs KEDA labels and of Jobs' Pods, in the same namespaces,
        feeding ``jobs`` and ``pods`` (replace, apply) handlers."""
        from kubernetes import client

        batch, core = client.BatchV1Api(self.api), client.CoreV1Api(self.api)
        for ns in self.namespaces or (None,):
            where = ns or "all namespaces"
            job_call = (batch.list_job_for_all_namespaces if ns is None
                        else functools.partial(batch.list_namespaced_job, ns))  # fmt: skip
            pod_call = (core.list_pod_for_all_namespaces if ns is None
                        else functools.partial(core.list_namespaced_pod, ns))  # fmt: skip
            self.add(f"Jobs in {where}", job_call, *jobs, label_selector=job_label)
            self.add(f"Pods of Jobs in {where}", pod_call, *pods, label_selector=pod_label)

    def scaledjob_keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._docs["ScaledJob"])

    def scaledjob(self, namespace: str, name: str) -> Doc | None:
        with self._lock:
            return self._docs["ScaledJob"].get((namespace, name))
