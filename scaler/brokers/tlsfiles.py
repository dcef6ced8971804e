"""Client TLS material from a TriggerAuthentication (``ca``, ``cert``, ``key``,
``keyPassword``), for broker clients.

Python's ``ssl`` loads a client certificate only from files, and redis-py builds its
TLS context per connection from file paths. So a client certificate and key are
written, for as long as the client that uses them is open, into a folder only this
process may read (``0700``, files ``0600``; the chart mounts ``/tmp`` as a
memory-backed emptyDir), and removed when the client is closed. A CA is passed as
data and never written.

Errors name the parameter, never its contents.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass

from scaler.errors import MetadataError
from scaler.metadata import Secret


@dataclass(frozen=True)
class ClientTls:
    """A broker client's TLS settings from KEDA's ``NewTLSConfigWithPassword``: the
    system's CAs plus ``ca``; a client certificate when both ``cert`` and ``key`` are
    given; ``unsafe`` skips verification."""

    ca: Secret | None = None
    cert: Secret | None = None
    key: Secret | None = None
    key_password: Secret | None = None
    unsafe: bool = False

    @property
    def has_client_cert(self) -> bool:
        return self.cert is not None and self.key is not None


class TlsFiles:
    """A private folder holding one client certificate and key; ``close`` removes it."""

    def __init__(self, tls: ClientTls) -> None:
        if tls.cert is None or tls.key is None:
            raise ValueError("TlsFiles needs a certificate and its key")
        self.folder = tempfile.mkdtemp(prefix="kqs-tls-")  # mode 0700
        self.cert = os.path.join(self.folder, "cert.pem")
        self.key = os.path.join(self.folder, "key.pem")
        for path, secret in ((self.cert, tls.cert), (self.key, tls.key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secret.reveal())

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    async def aclose(self) -> None:  # closed with the client it belongs to
        self.close()


def check_tls_param(value: str) -> None:
    """KEDA's ``tls`` TriggerAuthentication parameter: ``enable`` or ``disable``."""
    if value not in ("", "enable", "disable"):
        raise MetadataError(
            f'TriggerAuthentication parameter "tls" value "{value}" must be "enable" or "disable"'
        )


def context(tls: ClientTls) -> ssl.SSLContext:
    """An SSLContext as KEDA builds it; MetadataError naming the bad parameter."""
    ctx = ssl.create_default_context()
    if tls.unsafe:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.ca is not None:
        try:
            ctx.load_verify_locations(cadata=tls.ca.reveal())
        except (ssl.SSLError, ValueError):
            raise MetadataError(
                'TriggerAuthentication parameter "ca" is not a PEM certificate'
            ) from None
    if tls.has_client_cert:
        files = TlsFiles(tls)
        try:
            password = tls.key_password.reveal() if tls.key_password else None
            ctx.load_cert_chain(files.cert, files.key, password=password)
        except (ssl.SSLError, ValueError, OSError):
            raise MetadataError(
                'TriggerAuthentication parameters "cert" and "key" are not a PEM certificate '
                'and its private key (with "keyPassword" when the key is encrypted)'
            ) from None
        finally:
            files.close()
    return ctx
