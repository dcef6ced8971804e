"""The objects a manifest file carries beside its ScaledJobs (Secrets, ConfigMaps,
TriggerAuthentications, ClusterTriggerAuthentications), read as ``explain`` needs them:
for the Job container's environment (``...FromEnv`` keys) and for each trigger's
``authenticationRef``, resolved by :mod:`scaler.kube.auth` exactly as the scaler's
``--kubernetes`` resolves it from the API server. Nothing here talks to a cluster."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scaler.documents import Doc, mapping
from scaler.keda.env import UNKNOWN, Lookup, Unknown


class FileError(Exception):
    """An object in the files cannot be read (its data is not what Kubernetes takes)."""


def _secret_data(doc: Doc, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in mapping(doc.get("data")).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise FileError(f'{where}: data "{key}" is not base64 of UTF-8 text') from None
    out.update({str(k): str(v) for k, v in mapping(doc.get("stringData")).items()})
    return out


@dataclass
class FileObjects:
    """:class:`scaler.kube.auth.Objects` over the documents of the files given."""

    cluster_namespace: str = "keda"
    _scaled: dict[tuple[str, str], Doc] = field(default_factory=dict)
    _auth: dict[tuple[str, str, str], Doc] = field(default_factory=dict)
    _data: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, docs: Sequence[object], cluster_namespace: str = "keda") -> FileObjects:
        objects = cls(cluster_namespace)
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            kind = str(doc.get("kind", ""))
            meta = mapping(doc.get("metadata"))
            name, ns = str(meta.get("name", "")), str(meta.get("namespace") or "default")
            if kind == "ScaledJob":
                objects._scaled[ns, name] = doc
            elif kind == "TriggerAuthentication":
                objects._auth[kind, ns, name] = doc
            elif kind == "ClusterTriggerAuthentication":
                objects._auth[kind, "", name] = doc
            elif kind == "Secret":
                objects._data[kind, ns, name] = _secret_data(doc, f"Secret {ns}/{name}")
            elif kind == "ConfigMap":
                objects._data[kind, ns, name] = {
                    str(k): str(v) for k, v in mapping(doc.get("data")).items()
                }
        return objects

    def scaled(self, namespace: str, name: str) -> Sequence[Doc]:
        found = self._scaled.get((namespace, name))
        return [found] if found is not None else []

    def trigger_authentication(self, namespace: str, name: str) -> Doc | None:
        return self._auth.get(("TriggerAuthentication", namespace, name))

    def cluster_trigger_authentication(self, name: str) -> Doc | None:
        return self._auth.get(("ClusterTriggerAuthentication", "", name))

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        return self._data.get((kind, namespace, name))

    def lookup(self, namespace: str) -> Lookup:
        """For the container environment: an object in the files is read from them;
        any other is unknown (``--env`` may supply its variables), never "missing"."""

        def read(kind: str, name: str) -> Mapping[str, str] | Unknown | None:
            found = self._data.get((kind, namespace, name))
            return found if found is not None else UNKNOWN

        return read
