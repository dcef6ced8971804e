"""Broker credentials kept on the scaler, selected by a trigger's ``credentialsRef``.

``--credentials-dir DIR`` holds one folder per reference, one file per key —
exactly how Kubernetes mounts a Secret as a volume:

    DIR/redis-main/password
    DIR/redis-main/username
    DIR/rabbit-prod/host          (amqp://user:pass@rabbitmq:5672/vhost)
    DIR/aws-reader/awsAccessKeyID
    DIR/aws-reader/awsSecretAccessKey

A trigger with ``credentialsRef: redis-main`` gets each file as if KEDA had sent
``<key>FromEnv`` with its content, unless the metadata already sets ``<key>`` or
``<key>FromEnv`` (the trigger wins). So the keys are the trigger's own connection
and credential keys (address, host, port, username, password, sentinel*, host for
RabbitMQ, awsAccessKeyID, awsSecretAccessKey, awsSessionToken, ...), and secrets
never sit in a ScaledJob. Files are re-read every ``refresh`` seconds, so a rotated
Secret takes effect without a restart; reading never follows a reference outside
DIR.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from scaler.errors import MetadataError

REF_KEY = "credentialsRef"
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


class CredentialStore:
    def __init__(
        self, root: Path, *, refresh: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._root = root
        self._refresh = refresh
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}

    def get(self, ref: str) -> dict[str, str]:
        """The keys of one reference; MetadataError when it does not exist."""
        if not _REF.match(ref):
            raise MetadataError(
                f'parameter "{REF_KEY}" value "{ref}" must be a name of letters, digits, '
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

    def apply(self, metadata: Mapping[str, str]) -> Mapping[str, str]:
        """The metadata with the referenced keys filled in as ``<key>FromEnv``."""
        ref = metadata.get(REF_KEY, "")
        if not ref:
            return metadata
        merged = dict(metadata)
        for key, value in self.get(ref).items():
            if value and not metadata.get(key) and not metadata.get(f"{key}FromEnv"):
                merged[f"{key}FromEnv"] = value
        return merged


def apply_without_store(metadata: Mapping[str, str]) -> Mapping[str, str]:
    """What a scaler without --credentials-dir does with a credentialsRef: refuse it."""
    if metadata.get(REF_KEY):
        raise MetadataError(
            f'parameter "{REF_KEY}" needs the scaler to run with --credentials-dir '
            "(KQS_CREDENTIALS_DIR); this one has none"
        )
    return metadata
