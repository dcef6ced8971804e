"""A failed read leaves no value behind: after a read that fails (here Redis refusing
a wrong password), the ScaledJob's value, activity and age series are gone until a
read succeeds again, so a dashboard or alert never shows the last good number as if
it were current; and each failure is counted per ScaledJob and gRPC code."""

from __future__ import annotations

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD, ServerFactory, ref

VALUE, ACTIVE = "keda_queue_scaler_workload_value", "keda_queue_scaler_workload_active"
CALLS = "keda_queue_scaler_workload_calls_total"


async def test_a_failed_read_removes_the_value_and_counts_the_error(
    start_server: ServerFactory, redis_password_server: RedisProcess
) -> None:
    r = redis_password_server.client()
    r.delete("stale-jobs")
    r.rpush("stale-jobs", *range(7))
    good = {"scalerType": "redis", "address": redis_password_server.address,
            "listName": "stale-jobs", "password": REDIS_PASSWORD}  # fmt: skip
    bad = {**good, "password": "not-the-password"}
    render = {"scaled_namespace": "team-a", "scaled_name": "render", "metric": "redis-stale-jobs"}
    mail = {**render, "scaled_namespace": "team-b", "scaled_name": "mail"}
    async with start_server(cache_ttl=0.0) as s:

        async def poll(metadata: dict[str, str], name: str, ns: str) -> float:
            request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata, name, ns))
            return (await s.stub.GetMetrics(request)).metricValues[0].metricValueFloat

        def value(labels: dict[str, str]) -> float | None:
            return s.server.registry.get_sample_value(VALUE, labels)

        assert await poll(good, "render", "team-a") == 7
        assert await poll(good, "mail", "team-b") == 7
        assert (value(render), s.server.registry.get_sample_value(ACTIVE, render)) == (7, 1)
        assert s.sample(CALLS, scaled_namespace="team-a", scaled_name="render", code="OK") == 1

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await poll(bad, "render", "team-a")
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # team-a's series are gone (not 7, not 0); team-b's read still stands
        assert value(render) is None
        assert s.server.registry.get_sample_value(ACTIVE, render) is None
        assert value(mail) == 7
        assert s.sample(CALLS, scaled_namespace="team-a", scaled_name="render",
                        code="UNAUTHENTICATED") == 1  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError):
            await s.stub.IsActive(ref(bad, "render", "team-a"))
        assert s.sample(CALLS, scaled_namespace="team-a", scaled_name="render",
                        code="UNAUTHENTICATED") == 2  # fmt: skip
        assert s.sample(CALLS, scaled_namespace="team-b", scaled_name="mail",
                        code="UNAUTHENTICATED") == 0  # fmt: skip

        r.rpush("stale-jobs", 7, 8)
        assert await poll(good, "render", "team-a") == 9  # a good read brings it back
        assert value(render) == 9


async def test_error_series_stay_within_the_series_bound(
    start_server: ServerFactory, redis_password_server: RedisProcess
) -> None:
    """A tenant with many ScaledJobs failing in every way cannot grow the error series
    past --max-metric-series: the oldest go, counted as evictions."""
    bad = {"scalerType": "redis", "address": redis_password_server.address,
           "listName": "jobs", "password": "wrong"}  # fmt: skip
    async with start_server(max_metric_series=5) as s:
        for i in range(12):
            with pytest.raises(grpc.aio.AioRpcError):
                await s.stub.IsActive(ref(bad, f"sj-{i}", "greedy"))
        kept = next(
            m for m in s.server.registry.collect() if m.name == CALLS.removesuffix("_total")
        )
        names = {x.labels["scaled_name"] for x in kept.samples if x.name == CALLS}
        assert names == {f"sj-{i}" for i in range(7, 12)}
        assert s.sample("keda_queue_scaler_workload_series_evicted_total") >= 7
