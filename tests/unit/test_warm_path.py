"""The warm path: a request the request map knows, its reading cached, answered in a
few steps. It must answer and count exactly as the full path does, and hand every
other case (a stale reading, a wrong metric name, a failing broker) to the full path.

Each case compares a request's first call, which the full path answers (the request
map has not seen it), with the same request's second call, which the warm path
answers while Triggers.parse is made to fail the test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from scaler.brokers.memory.client import MemoryAdapter
from scaler.errors import BrokerUnavailable
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import Running, ServerFactory

MEMORY = {"scalerType": "memory", "queueName": "jobs", "queueLength": "2"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ref(name: str, **extra: str) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(namespace="team-a", name=name, scalerMetadata={**MEMORY, **extra})


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, tuple[Any, ...]], float]:
    """Every sample but durations' buckets and sums (they depend on time), with
    ``name`` as the ScaledJob label so two ScaledJobs' series compare."""
    found: dict[tuple[str, tuple[Any, ...]], float] = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name.endswith(("_bucket", "_sum", "_created")):
                continue
            if s.labels.get("scaled_name") not in (None, name):
                continue
            labels = tuple(sorted((k, "X" if k == "scaled_name" else v)
                                  for k, v in s.labels.items()))  # fmt: skip
            found[s.name, labels] = s.value
    return found


def delta(
    before: dict[tuple[str, tuple[Any, ...]], float],
    after: dict[tuple[str, tuple[Any, ...]], float],
) -> dict[tuple[str, tuple[Any, ...]], float]:
    """Counters and counts as increments, gauges as they stand after."""
    return {
        k: v - before.get(k, 0.0) if k[0].endswith(("_total", "_count")) else v
        for k, v in after.items()
    }


Call = Callable[[Running, pb.ScaledObjectRef], Any]


async def spec(s: Running, r: pb.ScaledObjectRef) -> Any:
    return await s.stub.GetMetricSpec(r)


async def metrics(s: Running, r: pb.ScaledObjectRef) -> Any:
    return await s.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=r, metricName="s0-memory-jobs")
    )


async def active(s: Running, r: pb.ScaledObjectRef) -> Any:
    return await s.stub.IsActive(r)


@pytest.mark.parametrize("call", [spec, metrics, active], ids=["spec", "metrics", "active"])
async def test_a_warm_call_answers_and_counts_as_the_full_path_did(
    start_server: ServerFactory, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 7)
    async with start_server(adapters={"memory": memory}, cache_ttl=60) as s:
        registry = s.server.registry
        await metrics(s, ref("reader"))  # the queue's reading is cached from here on
        reads = memory.reads["jobs"]
        first = ref("fresh", activationQueueLength="3")
        before = samples(registry, "fresh")
        full = await call(s, first)
        full_counts = delta(before, samples(registry, "fresh"))

        def unparsed(*args: object, **kwargs: object) -> None:
            raise AssertionError("the warm path parsed the request")

        monkeypatch.setattr(s.server.triggers, "parse", unparsed)
        before = samples(registry, "fresh")
        warm = await call(s, first)
        warm_counts = delta(before, samples(registry, "fresh"))

        assert warm == full
        assert warm_counts == full_counts
        assert memory.reads["jobs"] == reads  # both answered from the cache
        # The full path's counts are what a cached answer is: this is not two empties.
        rpc = {k: v for k, v in full_counts.items() if v and "rpc_requests" in k[0]}
        assert list(rpc.values()) == [1.0]
        if call is not spec:
            assert any(k[0] == "keda_queue_scaler_cache_hits_total" and v == 1
                       for k, v in full_counts.items())  # fmt: skip
            assert any(k[0] == "keda_queue_scaler_workload_value" and v == 7
                       for k, v in samples(registry, "fresh").items())  # fmt: skip


async def test_a_stale_reading_is_read_again_not_served_warm(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 3)
    clock = Clock()
    async with start_server(adapters={"memory": memory}, cache_ttl=5, clock=clock) as s:
        r = ref("job")
        assert (await metrics(s, r)).metricValues[0].metricValueFloat == 3.0
        assert (await active(s, r)).result is True
        memory.take("jobs")
        memory.take("jobs")
        memory.take("jobs")
        assert (await metrics(s, r)).metricValues[0].metricValueFloat == 3.0  # within TTL
        clock.now += 5
        assert (await metrics(s, r)).metricValues[0].metricValueFloat == 0.0
        assert (await active(s, r)).result is False
        assert memory.reads["jobs"] == 2


async def test_a_failing_read_after_warm_calls_is_an_error_and_drops_the_value(
    start_server: ServerFactory,
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 4)
    clock = Clock()
    async with start_server(adapters={"memory": memory}, cache_ttl=5, clock=clock) as s:
        r = ref("job")
        for _ in range(3):
            await metrics(s, r)
        labels = {"scaled_namespace": "team-a", "scaled_name": "job", "metric": "memory-jobs"}
        assert s.sample("keda_queue_scaler_workload_value", **labels) == 4.0
        memory.set_failure("jobs", BrokerUnavailable("memory broker down"))
        clock.now += 5
        for call in (metrics, active):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(s, r)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "memory broker down" in (err.value.details() or "")
        value = s.server.registry.get_sample_value("keda_queue_scaler_workload_value", labels)
        assert value is None


async def test_a_warm_request_still_refuses_another_metric_name(
    start_server: ServerFactory,
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 1)
    async with start_server(adapters={"memory": memory}) as s:
        r = ref("job")
        await metrics(s, r)
        for asked in ("memory-other", "s0-memory-other", "s1-memory-jobsx"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=r, metricName=asked))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A tenant asking under many names gets each answered, and the entry stays small.
        for i in range(50):
            reply = await s.stub.GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=r, metricName=f"s{i}-memory-jobs")
            )
            assert reply.metricValues[0].metricName == f"s{i}-memory-jobs"
        (entry,) = s.server.service._warm.values()
        assert len(entry.asked) <= 4


async def test_warm_entries_are_bounded_by_max_triggers(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 1)
    async with start_server(adapters={"memory": memory}, max_triggers=3) as s:
        for i in range(20):
            r = ref(f"job-{i}")
            for _ in range(2):
                assert (await active(s, r)).result is True
        assert 1 <= len(s.server.service._warm) <= 3
