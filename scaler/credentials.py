"""Broker credentials kept on the scaler, selected by a trigger's ``credentialsRef``.

``--credentials-dir DIR`` holds one folder per credential set, one file per key —
exactly how Kubernetes mounts a Secret as a volume:

    DIR/redis-main/namespaces     team-a, team-b       (who may use the set; * for all)
    DIR/redis-main/address        redis.data:6379      (where its credentials may go)
    DIR/redis-main/password
    DIR/rabbit-prod/namespaces
    DIR/rabbit-prod/host          amqp://user:pass@rabbitmq:5672/vhost
    DIR/aws-reader/namespaces
    DIR/aws-reader/awsAccessKeyID
    DIR/aws-reader/awsSecretAccessKey

A set is bound twice:

- to **namespaces**: its ``namespaces`` file lists the namespaces whose ScaledJobs
  may name it (``*``: every namespace). A set without one is refused, and so is a
  trigger from a namespace not on the list (PERMISSION_DENIED naming both).
- to **a broker**: the set carries its connection target (``address``/``host`` for
  Redis, ``host`` for RabbitMQ, optionally ``awsEndpoint`` for SQS, else AWS). A
  trigger that names the set may not set any target key itself, in any form
  (PERMISSION_DENIED naming the key): it can narrow what it reads (list, queue,
  database), never where the credentials go. A Redis or RabbitMQ set without a
  target is refused. Nor may it weaken how they travel: ``unsafeSsl: true`` needs
  the set's own ``unsafeSsl`` file, and ``enableTLS: false`` is refused where the
  set turns TLS on (:func:`check_transport`).

Every other file fills the key of the same name unless the trigger sets that key
itself (the trigger's own ``username``, for example, wins). Keys that have a
``<key>FromEnv`` form are filled in that form, as if KEDA had resolved them. Files are re-read
every ``refresh`` seconds, so a rotated Secret takes effect without a restart;
reading never follows a reference outside DIR.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from scaler.errors import MetadataError, PolicyError
from scaler.guard import quoted
from scaler.metadata import TriggerMetadata

REF_KEY = "credentialsRef"
NAMESPACES_FILE = "namespaces"
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")

#: How a connection is protected (``enableTLS``, ``unsafeSsl``): under a set, or a
#: ClusterTriggerAuthentication, the trigger may make it stricter, never weaker.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool, as KEDA reads them
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class CredentialStore:
    def __init__(
        self, root: Path, *, refresh: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._root = root
        self._refresh = refresh
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}

    def get(self, ref: str) -> dict[str, str]:
        """The files of one set; MetadataError when it does not exist."""
        if not _REF.match(ref):
            raise MetadataError(
                f'parameter "{REF_KEY}" value "{quoted(ref)}" must be a name of letters, digits, '
                "'.', '_' or '-' (the name of a folder in the scaler's --credentials-dir)"
            )
        now = self._clock()
        cached = self._cache.get(ref)
        if cached is not None and now - cached[0] < self._refresh:
            return cached[1]
        folder = self._root / ref
        if not folder.is_dir():
            raise MetadataError(
                f'parameter "{REF_KEY}" value "{ref}": the scaler has no credentials of that '
                f"name (no folder {ref!r} in its --credentials-dir)"
            )
        values = {
            path.name: path.read_text().strip()
            for path in sorted(folder.iterdir())
            if _KEY.match(path.name) and path.is_file()
        }
        self._cache[ref] = (now, values)
        return values

    def apply(
        self,
        metadata: Mapping[str, str],
        namespace: str,
        keys: type[TriggerMetadata] | None = None,
    ) -> Mapping[str, str]:
        """The metadata with the set's keys filled in, each as the scalerType's
        ``<key>FromEnv`` when it has that form (as if KEDA had resolved it), after
        checking that ``namespace`` may use the set and that the trigger leaves its
        target alone. ``keys`` is the scalerType's metadata class (None: unknown, which
        its parse refuses): its keys declare which are targets and identities."""
        ref = metadata.get(REF_KEY, "")
        if not ref:
            return metadata
        files = self.get(ref)
        allowed = _namespaces(ref, files)
        if "*" not in allowed and namespace not in allowed:
            raise PolicyError(
                f'namespace "{quoted(namespace)}" may not use credential set "{ref}": the set\'s '
                f'"{NAMESPACES_FILE}" file does not list it'
            )
        check_transport(metadata, files, f'{REF_KEY} "{ref}"')
        locked = keys.names_with_role("target", "port", "identity") if keys else ()
        for key in locked:
            for name in (key, f"{key}FromEnv"):
                if name in metadata:
                    raise PolicyError(
                        f'parameter "{name}" may not be set with {REF_KEY} "{ref}": a credential '
                        "set fixes where its credentials go and whom they act as (its own "
                        "address, host, endpoint or role)"
                    )
        needed = keys.required_target() if keys else ()
        if needed and not any(files.get(k) for k in needed):
            raise PolicyError(
                f'credential set "{ref}" names no broker to go to: add a '
                f"{' or '.join(repr(k) for k in needed)} file to it, so its credentials "
                "can only reach that broker"
            )
        merged = dict(metadata)
        for key, value in files.items():
            if key == NAMESPACES_FILE or not value:
                continue
            if metadata.get(key) or metadata.get(f"{key}FromEnv"):
                continue  # the trigger's own (non-target) key wins
            merged[_fill_form(keys, key)] = value
        return merged


def _fill_form(keys: type[TriggerMetadata] | None, key: str) -> str:
    """``<key>FromEnv`` when the scalerType reads that form, else the key itself."""
    if keys is None:
        return f"{key}FromEnv"
    names = {n for spec in keys.keys() for n in spec.names()}  # noqa: SIM118
    return f"{key}FromEnv" if f"{key}FromEnv" in names else key


def check_transport(metadata: Mapping[str, str], bound: Mapping[str, str], source: str) -> None:
    """PolicyError when the trigger's metadata makes the transport of credentials it
    does not own weaker than ``bound`` (the credential set's files, or what a
    ClusterTriggerAuthentication fixes) says: ``unsafeSsl`` true where the binding
    does not say so itself, or ``enableTLS`` false where the binding turns TLS on.
    Stricter is allowed (TLS on, certificate checks kept); a value that is not a
    boolean is left for the parser to refuse."""
    for name in ("unsafeSsl", "unsafeSslFromEnv"):
        if metadata.get(name, "").strip() in _TRUE and bound.get("unsafeSsl", "") not in _TRUE:
            raise PolicyError(
                f'parameter "{name}" may not be true with {source}: credentials the trigger '
                "does not own go only over a verified connection, so a trigger may make "
                "their transport stricter, never weaker"
            )
    for name in ("enableTLS", "enableTLSFromEnv"):
        if metadata.get(name, "").strip() in _FALSE and bound.get("enableTLS", "") in _TRUE:
            raise PolicyError(
                f'parameter "{name}" may not be false with {source}, which turns TLS on: a '
                "trigger may make the transport of credentials it does not own stricter, "
                "never weaker"
            )


def _namespaces(ref: str, files: Mapping[str, str]) -> set[str]:
    text = files.get(NAMESPACES_FILE)
    if text is None:
        raise PolicyError(
            f'credential set "{ref}" has no "{NAMESPACES_FILE}" file: list the namespaces '
            'whose ScaledJobs may use it (or "*" for all) before any trigger can'
        )
    return {n for n in re.split(r"[\s,]+", text) if n and not n.startswith("#")}


def apply_without_store(metadata: Mapping[str, str]) -> Mapping[str, str]:
    """What a scaler without --credentials-dir does with a credentialsRef: refuse it."""
    if metadata.get(REF_KEY):
        raise MetadataError(
            f'parameter "{REF_KEY}" needs the scaler to run with --credentials-dir '
            "(KQS_CREDENTIALS_DIR); this one has none"
        )
    return metadata
