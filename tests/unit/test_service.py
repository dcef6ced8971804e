"""The servicer through a real gRPC channel, on the in-memory adapter."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scaler.brokers.memory.client import MemoryAdapter
from scaler.errors import BrokerAuthError, BrokerUnavailable, QueueNotFound
from scaler.proto import externalscaler_pb2 as pb
from scaler.service import add_to_server
from tests.conftest import ServerFactory, metrics_request, ref

MEMORY = {"scalerType": "memory", "queueName": "jobs", "queueLength": "2"}


async def test_every_unary_rpc_answers_from_the_queue(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 7)
    async with start_server(adapters={"memory": memory}) as s:
        spec = await s.stub.GetMetricSpec(ref(MEMORY))
        assert [(m.metricName, m.targetSize, m.targetSizeFloat) for m in spec.metricSpecs] == [
            ("memory-jobs", 2, 2.0)
        ]
        name = spec.metricSpecs[0].metricName
        values = await s.stub.GetMetrics(metrics_request(MEMORY, name))
        assert [(v.metricName, v.metricValue, v.metricValueFloat) for v in values.metricValues] == [
            (name, 7, 7.0)
        ]
        assert (await s.stub.IsActive(ref(MEMORY))).result is True


async def test_keda_prefixed_and_empty_metric_names_are_accepted(
    start_server: ServerFactory,
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 3)
    async with start_server(adapters={"memory": memory}) as s:
        for asked, answered in [("s0-memory-jobs", "s0-memory-jobs"), ("", "memory-jobs")]:
            reply = await s.stub.GetMetrics(metrics_request(MEMORY, asked))
            assert reply.metricValues[0].metricName == answered
            assert reply.metricValues[0].metricValueFloat == 3.0
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.GetMetrics(metrics_request(MEMORY, "redis-other"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert '"redis-other"' in (err.value.details() or "")
        assert '"memory-jobs"' in (err.value.details() or "")


@pytest.mark.parametrize(
    ("depth", "activation", "active"),
    [(0, "0", False), (1, "0", True), (5, "5", False), (6, "5", True)],
)
async def test_is_active_is_strictly_greater_than_activation(
    start_server: ServerFactory, depth: int, activation: str, active: bool
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", depth)
    meta = {**MEMORY, "activationQueueLength": activation}
    async with start_server(adapters={"memory": memory}) as s:
        assert (await s.stub.IsActive(ref(meta))).result is active


async def test_bad_metadata_is_invalid_argument_naming_key_and_value(
    start_server: ServerFactory,
) -> None:
    """GetMetrics and IsActive, whose errors KEDA shows as Warning events, refuse bad
    metadata; GetMetricSpec, whose errors KEDA hides, still answers (next test)."""
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        cases = [
            ({"scalerType": "kafka"}, ['"kafka"', "memory"]),
            ({}, ['"scalerType" is required', "memory"]),
            ({"scalerType": "memory"}, ['"queueName" is required']),
            ({**MEMORY, "queueLength": "lots"}, ['"queueLength"', '"lots"', "whole number"]),
            ({**MEMORY, "queueLength": "0"}, ['"queueLength"', '"0"', "greater than 0"]),
        ]
        for metadata, needles in cases:
            for call in (
                s.stub.IsActive(ref(metadata)),
                s.stub.GetMetrics(metrics_request(metadata)),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                for needle in needles:
                    assert needle in (err.value.details() or ""), (metadata, err.value.details())
        assert s.sample(
            "keda_queue_scaler_rpc_requests_total", method="GetMetrics", code="INVALID_ARGUMENT"
        ) == len(cases)


@pytest.mark.parametrize(
    ("metadata", "name", "target"),
    [
        ({**MEMORY, "queueLength": "lots"}, "memory-jobs", 5.0),  # the key's default
        ({**MEMORY, "queueLength": "0"}, "memory-jobs", 5.0),
        ({**MEMORY, "activationQueueLength": "x"}, "memory-jobs", 2.0),
        ({"scalerType": "memory"}, "memory-", 5.0),  # no queueName: empty placeholder
        ({"scalerType": "kafka"}, "kafka-invalid-metadata", 1.0),
        ({}, "external-invalid-metadata", 1.0),
    ],
)
async def test_metric_spec_answers_bad_metadata_so_keda_shows_the_error(
    start_server: ServerFactory, metadata: dict[str, str], name: str, target: float
) -> None:
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        (spec,) = (await s.stub.GetMetricSpec(ref(metadata))).metricSpecs
        assert (spec.metricName, spec.targetSizeFloat) == (name, target)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.stub.GetMetrics(metrics_request(metadata, spec.metricName))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BrokerUnavailable("cannot reach x"), grpc.StatusCode.UNAVAILABLE),
        (BrokerAuthError("refused"), grpc.StatusCode.UNAUTHENTICATED),
        (QueueNotFound("no queue"), grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_broker_failures_are_errors_never_values(
    start_server: ServerFactory, error: Exception, code: grpc.StatusCode
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 4)
    memory.set_failure("jobs", error)  # type: ignore[arg-type]
    async with start_server(adapters={"memory": memory}) as s:
        for call in (s.stub.GetMetrics(metrics_request(MEMORY)), s.stub.IsActive(ref(MEMORY))):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == code
            assert str(error) in (err.value.details() or "")
        # Errors are not cached: the broker's recovery shows on the next call.
        memory.set_failure("jobs", None)
        reply = await s.stub.GetMetrics(metrics_request(MEMORY))
        assert reply.metricValues[0].metricValue == 4


async def test_slow_broker_gives_deadline_exceeded_and_does_not_stall_others(
    start_server: ServerFactory,
) -> None:
    memory = MemoryAdapter()
    memory.put("fast", 1)
    memory.set_delay("slow", 5)
    slow = {**MEMORY, "queueName": "slow"}
    fast = {**MEMORY, "queueName": "fast"}
    async with start_server(adapters={"memory": memory}, read_timeout=2) as s:
        slow_call = asyncio.ensure_future(s.stub.GetMetrics(metrics_request(slow)))
        await memory.reading("slow")  # the slow read is under way
        fast_reply = await s.stub.GetMetrics(metrics_request(fast))
        assert fast_reply.metricValues[0].metricValue == 1
        assert not slow_call.done()  # answered while the slow read is still waiting
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await slow_call
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "2s" in (err.value.details() or "")
        assert s.sample(
            "keda_queue_scaler_broker_reads_total", scaler_type="memory",
            outcome="deadline_exceeded",
        ) == 1  # fmt: skip


async def test_concurrent_callers_share_one_read_per_ttl(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 9)
    memory.set_delay("jobs", 0.05)
    async with start_server(adapters={"memory": memory}, cache_ttl=60) as s:
        calls = [s.stub.GetMetrics(metrics_request(MEMORY)) for _ in range(50)]
        calls += [s.stub.IsActive(ref(MEMORY)) for _ in range(50)]
        await asyncio.gather(*calls)
        assert memory.reads["jobs"] == 1
        hits = s.sample("keda_queue_scaler_cache_hits_total", scaler_type="memory")
        waits = s.sample("keda_queue_scaler_coalesced_waits_total", scaler_type="memory")
        assert hits + waits == 99
        assert waits > 0


async def test_stream_is_active_sends_at_open_and_on_change(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    async with start_server(adapters={"memory": memory}, stream_interval=0.05, cache_ttl=0) as s:
        stream = s.stub.StreamIsActive(ref(MEMORY))
        first = await asyncio.wait_for(stream.read(), 5)
        assert first.result is False
        assert s.sample("keda_queue_scaler_stream_is_active_streams") == 1
        memory.put("jobs", 1)
        second = await asyncio.wait_for(stream.read(), 5)
        assert second.result is True
        memory.take("jobs")
        third = await asyncio.wait_for(stream.read(), 5)
        assert third.result is False
        stream.cancel()
        for _ in range(100):  # the server notices the cancel asynchronously
            if s.sample("keda_queue_scaler_stream_is_active_streams") == 0:
                break
            await asyncio.sleep(0.02)
        assert s.sample("keda_queue_scaler_stream_is_active_streams") == 0
        assert (
            s.sample(
                "keda_queue_scaler_rpc_requests_total", method="StreamIsActive", code="CANCELLED"
            )
            == 1
        )


async def test_stream_is_active_reports_broker_failure_as_status(
    start_server: ServerFactory,
) -> None:
    memory = MemoryAdapter()
    memory.set_failure("jobs", BrokerUnavailable("cannot reach the queue"))
    async with start_server(adapters={"memory": memory}) as s:
        stream = s.stub.StreamIsActive(ref(MEMORY))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stream.read()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_stream_metric_spec_matches_get_metric_spec(start_server: ServerFactory) -> None:
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        unary = await s.stub.GetMetricSpec(ref(MEMORY))
        stream = s.stub.StreamMetricSpec(ref(MEMORY))
        streamed = await asyncio.wait_for(stream.read(), 5)
        assert streamed == unary
        stream.cancel()


async def test_open_streams_end_cleanly_at_shutdown(start_server: ServerFactory) -> None:
    async with start_server(adapters={"memory": MemoryAdapter()}, stream_interval=0.05) as s:
        stream = s.stub.StreamIsActive(ref(MEMORY))
        assert (await stream.read()).result is False
        await s.server.stop(grace=2)

        async def read_to_end() -> None:
            while await stream.read() != grpc.aio.EOF:
                pass

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read_to_end()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in (err.value.details() or "")


async def test_health_and_reflection(start_server: ServerFactory) -> None:
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        health = health_pb2_grpc.HealthStub(s.channel)
        for service in ("", "externalscaler.ExternalScaler"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(s.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for answer in refl.ServerReflectionInfo(iter([request])):
            names = {svc.name for svc in answer.list_services_response.service}
            break
        assert {"externalscaler.ExternalScaler", "grpc.health.v1.Health"} <= names


async def test_health_goes_not_serving_on_stop(start_server: ServerFactory) -> None:
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        await s.server.health.enter_graceful_shutdown()
        health = health_pb2_grpc.HealthStub(s.channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_metrics_track_rpcs_and_values(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 3)
    async with start_server(adapters={"memory": memory}) as s:
        await s.stub.GetMetrics(metrics_request(MEMORY))
        await s.stub.IsActive(ref(MEMORY))
        assert s.sample("keda_queue_scaler_rpc_requests_total", method="GetMetrics", code="OK") == 1
        assert s.sample("keda_queue_scaler_rpc_duration_seconds_count", method="IsActive") == 1
        assert (
            s.sample("keda_queue_scaler_broker_reads_total", scaler_type="memory", outcome="ok")
            == 1
        )
        assert s.sample("keda_queue_scaler_cache_hits_total", scaler_type="memory") == 1
        labels = {"scaled_namespace": "default", "scaled_name": "job", "metric": "memory-jobs"}
        assert s.sample("keda_queue_scaler_workload_value", **labels) == 3
        assert s.sample("keda_queue_scaler_workload_active", **labels) == 1


async def test_workload_series_are_bounded(start_server: ServerFactory) -> None:
    memory = MemoryAdapter()
    async with start_server(adapters={"memory": memory}, max_metric_series=3) as s:
        for i in range(5):
            await s.stub.GetMetrics(metrics_request({**MEMORY, "queueName": f"q{i}"}))
        registry = s.server.registry
        kept = [
            i
            for i in range(5)
            if registry.get_sample_value(
                "keda_queue_scaler_workload_value",
                {"scaled_namespace": "default", "scaled_name": "job", "metric": f"memory-q{i}"},
            )
            is not None
        ]
        assert kept == [2, 3, 4]
        assert s.sample("keda_queue_scaler_workload_series_evicted_total") == 2


async def test_two_teams_queues_of_one_name_never_share_a_series(
    start_server: ServerFactory,
) -> None:
    """Two ScaledJobs in different namespaces read a queue named "jobs" (for Redis: on
    databases 0 and 1, one metric name): each keeps its own value, instead of one
    series flipping between 7 and 2."""
    memory = MemoryAdapter()
    memory.put("jobs", 7)
    async with start_server(adapters={"memory": memory}, cache_ttl=0.0) as s:
        for name, ns in (("render", "team-a"), ("mail", "team-b")):
            request = pb.GetMetricsRequest(scaledObjectRef=ref(MEMORY, name, ns))
            await s.stub.GetMetrics(request)
            for _ in range(5):  # the second team's queue holds 2
                memory.take("jobs")

        def value(ns: str, name: str) -> float:
            return s.sample("keda_queue_scaler_workload_value", scaled_namespace=ns,
                            scaled_name=name, metric="memory-jobs")  # fmt: skip

        assert (value("team-a", "render"), value("team-b", "mail")) == (7, 2)


async def test_metrics_endpoint_serves_prometheus_text(start_server: ServerFactory) -> None:
    import urllib.request

    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        await s.stub.IsActive(ref(MEMORY))
        url = f"http://127.0.0.1:{s.server.metrics_port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        text = body.decode()
        assert 'keda_queue_scaler_rpc_requests_total{code="OK",method="IsActive"} 1.0' in text


async def test_pb_int_fields_round_and_clamp() -> None:
    from scaler.service import _as_int64

    assert [_as_int64(v) for v in (0.0, 2.4, 2.6, -3.0, 1e30)] == [0, 2, 3, 0, 2**63 - 1]
    assert pb.MetricValue(metricValue=2**63 - 1).metricValue == 2**63 - 1


async def test_an_adapter_bug_is_internal_and_logged(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    memory = MemoryAdapter()
    memory.set_failure("jobs", RuntimeError("adapter bug"))  # type: ignore[arg-type]
    async with start_server(adapters={"memory": memory}) as s:
        for call in (
            s.stub.GetMetrics(metrics_request(MEMORY)),
            s.stub.StreamIsActive(ref(MEMORY)).read(),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert "adapter bug" not in (err.value.details() or "")  # details stay in the log
        assert (
            s.sample("keda_queue_scaler_rpc_requests_total", method="GetMetrics", code="INTERNAL")
            == 1
        )
    logged = [r.getMessage() for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert logged
    # The type and where it was raised, never its message (which may quote a broker).
    assert all("builtins.RuntimeError (message withheld)" in m for m in logged)
    assert all("scaler/brokers/memory/client.py" in m for m in logged)
    assert "adapter bug" not in caplog.text


async def test_unknown_keys_are_logged_once_per_scaledjob_and_counted(
    start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """KEDA ignores keys it does not know, and so does the scaler, but a typo leaves a
    default in place: one warning per ScaledJob and key, with the closest key, and a
    count; the call still answers (with the default target)."""
    memory = MemoryAdapter()
    memory.put("jobs", 7)
    typo = {"scalerType": "memory", "queueName": "jobs", "queueLenght": "1", "tls": "enable"}
    async with start_server(adapters={"memory": memory}) as s:
        with caplog.at_level("WARNING", logger="scaler.server"):
            for _ in range(3):  # KEDA polls again and again
                spec = await s.stub.GetMetricSpec(ref(typo, "render", "team-a"))
                await s.stub.GetMetrics(
                    pb.GetMetricsRequest(scaledObjectRef=ref(typo, "render", "team-a"))
                )
            await s.stub.GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=ref(typo, "mail", "team-b"))
            )
        assert spec.metricSpecs[0].targetSizeFloat == 5  # the default, as KEDA's
        lines = [r.getMessage() for r in caplog.records if "metadata key" in r.getMessage()]
        assert lines == [
            'ScaledJob team-a/render: metadata key "queueLenght" is not a key of scalerType '
            '"memory" (did you mean "queueLength"?): KEDA and the scaler ignore it',
            'ScaledJob team-a/render: metadata key "tls" is not a key of scalerType "memory": '
            "KEDA and the scaler ignore it",
            'ScaledJob team-b/mail: metadata key "queueLenght" is not a key of scalerType '
            '"memory" (did you mean "queueLength"?): KEDA and the scaler ignore it',
            'ScaledJob team-b/mail: metadata key "tls" is not a key of scalerType "memory": '
            "KEDA and the scaler ignore it",
        ]
        assert s.sample("keda_queue_scaler_unknown_metadata_keys_total", scaler_type="memory") == 4


class _Recorder:
    """Stands in for grpc.aio.Server: records what add_to_server registers."""

    def __init__(self) -> None:
        self.generic: tuple[Any, ...] = ()
        self.registered: dict[str, dict[str, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: tuple[Any, ...]) -> None:
        self.generic = handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.registered[service] = handlers


async def test_every_method_of_the_proto_is_served_with_its_own_types(
    start_server: ServerFactory,
) -> None:
    """add_to_server stands in for the generated registration (to send the warm path's
    bytes as they are): checked against the proto's own descriptor."""
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        recorder = _Recorder()
        add_to_server(s.server.service, recorder)  # type: ignore[arg-type]
    described = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    (handlers,) = recorder.registered.values()
    assert list(recorder.registered) == [described.full_name]
    assert len(recorder.generic) == 1
    assert sorted(handlers) == sorted(m.name for m in described.methods)
    for method in described.methods:
        handler = handlers[method.name]
        assert not handler.request_streaming
        assert handler.response_streaming == method.server_streaming
        asked = getattr(pb, method.input_type.name)()
        assert type(handler.request_deserializer(asked.SerializeToString())) is type(asked)
        answer = getattr(pb, method.output_type.name)()
        assert handler.response_serializer(answer) == answer.SerializeToString()
        assert handler.response_serializer(b"\x08\x01") == b"\x08\x01"
        served = handler.unary_stream if method.server_streaming else handler.unary_unary
        assert served == getattr(s.server.service, method.name)
