"""TLS and mTLS from files, as KEDA connects with caCert / tlsClientCert / tlsClientKey."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from scaler.brokers.memory.client import MemoryAdapter
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.certs import Pki, make_pki
from tests.conftest import ServerFactory, ref, run_cli

META = {"scalerType": "memory", "queueName": "q"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _channel(port: int, pki: Pki, *, client_cert: bool) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if client_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if client_cert else None,
    )
    return grpc.aio.secure_channel(f"localhost:{port}", creds)


async def _is_active(channel: grpc.aio.Channel) -> bool:
    reply = await pb_grpc.ExternalScalerStub(channel).IsActive(ref(META), timeout=5)
    return bool(reply.result)


async def test_tls_serves_verified_clients_and_refuses_plaintext(
    start_server: ServerFactory, pki: Pki
) -> None:
    memory = MemoryAdapter()
    memory.put("q", 1)
    tls = {"tls_cert_file": str(pki.server_cert), "tls_key_file": str(pki.server_key)}
    async with start_server(adapters={"memory": memory}, **tls) as s:
        async with _channel(s.server.port, pki, client_cert=False) as channel:
            assert await _is_active(channel) is True
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.IsActive(ref(META), timeout=5)  # the fixture's plaintext channel
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate(start_server: ServerFactory, pki: Pki) -> None:
    memory = MemoryAdapter()
    memory.put("q", 1)
    mtls = {
        "tls_cert_file": str(pki.server_cert),
        "tls_key_file": str(pki.server_key),
        "tls_client_ca_file": str(pki.ca),
    }
    async with start_server(adapters={"memory": memory}, **mtls) as s:
        async with _channel(s.server.port, pki, client_cert=True) as channel:
            assert await _is_active(channel) is True
        async with _channel(s.server.port, pki, client_cert=False) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _is_active(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_must_come_in_pairs(tmp_path: Path, pki: Pki) -> None:
    from scaler.settings import Settings

    with pytest.raises(ValueError, match="together"):
        Settings(tls_cert_file=str(pki.server_cert)).validate()
    with pytest.raises(ValueError, match="mTLS"):
        Settings(tls_client_ca_file=str(pki.ca)).validate()
    with pytest.raises(ValueError, match="not a readable file"):
        Settings(tls_cert_file=str(tmp_path / "nope"), tls_key_file=str(pki.server_key)).validate()


async def _probe(*args: str) -> tuple[int, str]:
    code, out, err = await run_cli("probe", *args)
    return code, out + err


async def test_probe_speaks_tls_and_mtls_as_the_chart_uses_it(
    start_server: ServerFactory, pki: Pki
) -> None:
    mtls = {
        "tls_cert_file": str(pki.server_cert),
        "tls_key_file": str(pki.server_key),
        "tls_client_ca_file": str(pki.ca),
    }
    async with start_server(adapters={"memory": MemoryAdapter()}, **mtls) as s:
        address = f"127.0.0.1:{s.server.port}"
        tls = ["--address", address, "--tls-ca-file", str(pki.ca), "--tls-server-name", "localhost"]
        client = ["--tls-cert-file", str(pki.client_cert), "--tls-key-file", str(pki.client_key)]
        code, out = await _probe(*tls, *client)
        assert (code, out.strip()) == (0, f"probe {address}: SERVING")
        code, out = await _probe(*tls)  # no client certificate: refused
        assert code == 1
        assert "UNAVAILABLE" in out
