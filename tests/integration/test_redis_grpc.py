"""The whole service on a real Redis, through a real gRPC channel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from tests.brokers import RedisProcess
from tests.conftest import Clock, ServerFactory, metrics_request, ref


def meta(server: RedisProcess, **extra: str) -> dict[str, str]:
    return {
        "scalerType": "redis",
        "address": server.address,
        "listName": "jobs",
        "listLength": "3",
        "scalerAddress": "keda-queue-scaler:6000",  # KEDA forwards it with the rest
        **extra,
    }


async def test_keda_poll_sequence_on_a_list(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    redis_db.client().rpush("jobs", *range(7))
    m = meta(redis_db)
    async with start_server() as s:
        # KEDA: GetMetricSpec, then GetMetrics for the first spec's name, then IsActive.
        spec = (await s.stub.GetMetricSpec(ref(m))).metricSpecs[0]
        assert (spec.metricName, spec.targetSize, spec.targetSizeFloat) == ("redis-jobs", 3, 3.0)
        reply = await s.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(m), metricName=spec.metricName)
        )
        assert [(v.metricName, v.metricValue, v.metricValueFloat) for v in reply.metricValues] == [
            (spec.metricName, 7, 7.0)
        ]
        assert (await s.stub.IsActive(ref(m))).result is True


async def test_stream_metric_names_agree(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    redis_db.client().xadd("orders.eu", {"n": 1})
    m = {"scalerType": "redis-streams", "address": redis_db.address, "stream": "orders.eu"}
    async with start_server() as s:
        spec = (await s.stub.GetMetricSpec(ref(m))).metricSpecs[0]
        assert spec.metricName == "redis-streams-orders-eu"
        reply = await s.stub.GetMetrics(metrics_request(m, spec.metricName))
        assert reply.metricValues[0].metricName == spec.metricName
        assert reply.metricValues[0].metricValue == 1


async def test_hundred_concurrent_pairs_cost_one_broker_read(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    redis_db.client().rpush("jobs", *range(10))
    redis_db.client().config_resetstat()
    m = meta(redis_db)
    clock = Clock()
    async with start_server(cache_ttl=1.0, clock=clock) as s:
        pairs = []
        for _ in range(100):
            pairs.append(s.stub.GetMetrics(metrics_request(m, "redis-jobs")))
            pairs.append(s.stub.IsActive(ref(m)))
        replies = await asyncio.gather(*pairs)
        assert {r.metricValues[0].metricValue for r in replies[::2]} == {10}
        assert all(r.result for r in replies[1::2])
        # One read = TYPE + LLEN, counted by Redis itself.
        assert redis_db.command_calls("llen") == 1
        assert redis_db.command_calls("type") == 1
        # The next TTL window costs exactly one more read.
        clock.now += 1.05
        await asyncio.gather(*(s.stub.IsActive(ref(m)) for _ in range(100)))
        assert redis_db.command_calls("llen") == 2


async def test_redis_down_gives_errors_then_recovers_without_restart(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    redis_db.client().rpush("jobs", 1, 2)
    m = meta(redis_db)
    clock = Clock()
    async with start_server(cache_ttl=0.2, read_timeout=1.0, clock=clock) as s:
        assert (await s.stub.GetMetrics(metrics_request(m))).metricValues[0].metricValue == 2
        redis_db.stop()
        clock.now += 0.25  # the cached value expires
        for call in (s.stub.GetMetrics(metrics_request(m)), s.stub.IsActive(ref(m))):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert redis_db.address in (err.value.details() or "")
        redis_db.start()
        redis_db.client().rpush("jobs", 1, 2, 3)
        loop = asyncio.get_running_loop()
        restarted = loop.time()
        while True:
            try:
                reply = await s.stub.GetMetrics(metrics_request(m))
                break
            except grpc.aio.AioRpcError:
                assert loop.time() - restarted < 30, "no recovery within 30 s"
                await asyncio.sleep(0.1)
        assert reply.metricValues[0].metricValue == 3
        assert (
            s.sample(
                "keda_queue_scaler_broker_reads_total", scaler_type="redis", outcome="unavailable"
            )
            >= 1
        )


async def test_stream_is_active_flips_when_items_arrive(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    m = meta(redis_db)
    async with start_server(stream_interval=0.05, cache_ttl=0.01) as s:
        stream = s.stub.StreamIsActive(ref(m))
        assert (await asyncio.wait_for(stream.read(), 5)).result is False
        redis_db.client().rpush("jobs", "work")
        assert (await asyncio.wait_for(stream.read(), 5)).result is True
        redis_db.client().delete("jobs")
        assert (await asyncio.wait_for(stream.read(), 5)).result is False
        stream.cancel()


async def test_wrong_password_through_grpc_is_unauthenticated(
    start_server: ServerFactory, redis_password_server: RedisProcess
) -> None:
    m = meta(redis_password_server, passwordFromEnv="not-the-password")
    async with start_server() as s:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.GetMetrics(metrics_request(m))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "not-the-password" not in (err.value.details() or "")


async def test_credentials_ref_keeps_the_password_on_the_scaler(
    start_server: ServerFactory, redis_password_server: RedisProcess, tmp_path: Path
) -> None:
    from tests.conftest import REDIS_PASSWORD

    folder = tmp_path / "redis-main"
    folder.mkdir()
    (folder / "address").write_text(redis_password_server.address)
    (folder / "password").write_text(REDIS_PASSWORD)
    (folder / "namespaces").write_text("default")  # the namespace ref() sends
    redis_password_server.client().delete("jobs")
    redis_password_server.client().rpush("jobs", 1, 2, 3)
    m = {"scalerType": "redis", "listName": "jobs", "credentialsRef": "redis-main"}
    async with start_server(credentials_dir=str(tmp_path)) as s:
        reply = await s.stub.GetMetrics(metrics_request(m))
        assert reply.metricValues[0].metricValue == 3
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.GetMetrics(metrics_request({**m, "credentialsRef": "nope"}))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "nope" in (err.value.details() or "")
