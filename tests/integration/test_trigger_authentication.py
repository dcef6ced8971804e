"""authenticationRef through the real gRPC server and real Redis (the resolver fed
fixed objects; the end-to-end suite feeds it real watches): what KEDA sees when it
works, when it cannot, and that nothing secret leaks into either answer."""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc
import pytest

from tests.brokers import RedisProcess
from tests.certs import make_pki
from tests.conftest import REDIS_PASSWORD, ServerFactory, ref
from tests.integration.test_security import Listener
from tests.kubeobjects import FixedObjects


def request(metadata: dict[str, str], name: str) -> object:
    from scaler.proto import externalscaler_pb2 as pb

    return pb.GetMetricsRequest(scaledObjectRef=ref(metadata, name=name, namespace="team-a"))


async def test_the_password_comes_from_the_trigger_authentication(
    start_server: ServerFactory, redis_password_server: RedisProcess
) -> None:
    redis_password_server.client().delete("ta-jobs")
    redis_password_server.client().rpush("ta-jobs", 1, 2, 3)
    metadata = {
        "scalerType": "redis",
        "address": redis_password_server.address,
        "listName": "ta-jobs",
    }
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", metadata, {"password": REDIS_PASSWORD})
    async with start_server(kube=objects) as s:
        answer = await s.stub.GetMetrics(request(metadata, "job"))
        assert answer.metricValues[0].metricValueFloat == 3
        # Another ScaledJob with the same metadata but no authenticationRef: no password.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await s.stub.GetMetrics(request(metadata, "someone-else"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_resolution_failures_are_failed_precondition_without_secrets(
    start_server: ServerFactory,
) -> None:
    metadata = {"scalerType": "redis", "address": "127.0.0.1:1", "listName": "x"}
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", metadata, {"password": REDIS_PASSWORD})
    objects.docs[0]["spec"]["secretTargetRef"][0]["key"] = "renamed"
    async with start_server(kube=objects) as s:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await s.stub.GetMetrics(request(metadata, "job"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert 'has no key "renamed"' in (caught.value.details() or "")
    assert REDIS_PASSWORD not in (caught.value.details() or "")


async def test_a_cluster_trigger_authentication_never_follows_the_metadata(
    start_server: ServerFactory,
) -> None:
    """The attacker's listener gets no connection: the ClusterTriggerAuthentication's
    password is refused to a trigger that names its own address."""
    attacker = Listener()
    await attacker.start()
    try:
        metadata = {"scalerType": "redis", "address": attacker.address, "listName": "x"}
        objects = FixedObjects()
        objects.add_trigger("team-a", "job", metadata,
                            {"password": REDIS_PASSWORD, "address": "127.0.0.1:6379"},
                            kind="ClusterTriggerAuthentication", auth_name="shared")  # fmt: skip
        async with start_server(kube=objects) as s:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await s.stub.GetMetrics(request(metadata, "job"))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert attacker.connections == 0
    finally:
        await attacker.stop()


async def test_client_certificate_files_live_only_as_long_as_the_client(
    start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path / "pki")
    redis = RedisProcess(tmp_path / "redis", tls=(pki.server_cert, pki.server_key, pki.ca),
                         client_cert=(pki.client_cert, pki.client_key))  # fmt: skip
    redis.start()
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    try:
        redis.client().rpush("tls-jobs", "a", "b")
        metadata = {"scalerType": "redis", "address": redis.address, "listName": "tls-jobs"}
        objects = FixedObjects()
        objects.add_trigger("team-a", "job", metadata, {
            "tls": "enable", "ca": pki.ca.read_text(), "cert": pki.client_cert.read_text(),
            "key": pki.client_key.read_text(),
        })  # fmt: skip
        async with start_server(kube=objects) as s:
            answer = await s.stub.GetMetrics(request(metadata, "job"))
            assert answer.metricValues[0].metricValueFloat == 2
            (held,) = list(private.iterdir())  # one folder, for the open client
            assert sorted(p.name for p in held.iterdir()) == ["cert.pem", "key.pem"]
        assert list(private.iterdir()) == []  # closed with the server's clients
    finally:
        redis.stop()
