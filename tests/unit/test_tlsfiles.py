"""Client TLS material from a TriggerAuthentication: files only this process can read,
removed with the client; errors that name the parameter, never its contents."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from scaler.brokers import tlsfiles
from scaler.errors import MetadataError
from scaler.metadata import Secret
from tests.certs import make_pki


def test_files_are_private_and_removed_on_close(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    material = tlsfiles.ClientTls(
        cert=Secret(pki.client_cert.read_text()), key=Secret(pki.client_key.read_text())
    )
    files = tlsfiles.TlsFiles(material)
    assert stat.S_IMODE(os.stat(files.folder).st_mode) == 0o700
    for path in (files.cert, files.key):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Path(files.key).read_text() == pki.client_key.read_text()
    files.close()
    assert not os.path.exists(files.folder)


def test_a_context_loads_the_ca_and_the_client_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path / "pki")
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    ctx = tlsfiles.context(tlsfiles.ClientTls(
        ca=Secret(pki.ca.read_text()), cert=Secret(pki.client_cert.read_text()),
        key=Secret(pki.client_key.read_text()),
    ))  # fmt: skip
    assert any(c["subject"] == ((("commonName", "test-ca"),),) for c in ctx.get_ca_certs())
    assert list(private.iterdir()) == []  # the files lived only while the context loaded them


@pytest.mark.parametrize("which", ["ca", "cert"])
def test_bad_material_is_named_not_quoted(tmp_path: Path, which: str) -> None:
    pki = make_pki(tmp_path)
    secret_text = "-----BEGIN NOT A CERT----- s3cret -----END-----"
    material = (
        tlsfiles.ClientTls(ca=Secret(secret_text))
        if which == "ca"
        else tlsfiles.ClientTls(cert=Secret(secret_text), key=Secret(pki.client_key.read_text()))
    )
    with pytest.raises(MetadataError, match=f'"{which}"') as caught:
        tlsfiles.context(material)
    assert "s3cret" not in caught.value.message
