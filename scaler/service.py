"""The ExternalScaler servicer: RPC -> AnyTrigger -> reading -> response.

It knows KEDA's protocol and nothing about brokers: triggers and readings are
injected. Every failure is answered with the status code of its
:class:`~scaler.errors.ScalerError` and a message naming the cause; a value is
never invented.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc

from scaler.errors import MetadataError, ScalerError, ShuttingDown
from scaler.guard import BrokerPolicy, capped, quoted
from scaler.logs import unexpected
from scaler.metrics import Metrics
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.readings import Readings
from scaler.registry import Triggers
from scaler.trigger import AnyTrigger

log = logging.getLogger("scaler.service")

T = TypeVar("T")
_INT64_MAX = 2**63 - 1
_KEDA_PREFIX = re.compile(r"^s[0-9]+-")


def _as_int64(value: float) -> int:
    """The deprecated int field, still the only one KEDA < 2.17 reads."""
    return max(0, min(_INT64_MAX, round(value)))


def _wire(ref: pb.ScaledObjectRef) -> bytes:
    """The request's identity for Triggers' request map: its bytes, map keys sorted."""
    return ref.SerializeToString(deterministic=True)


def _who(ref: pb.ScaledObjectRef) -> str:
    return f"{ref.namespace}/{ref.name}" if ref.namespace or ref.name else "(unnamed)"


class ExternalScalerService(pb_grpc.ExternalScalerServicer):
    def __init__(
        self,
        *,
        triggers: Triggers,
        readings: Readings,
        metrics: Metrics,
        stream_interval: float,
        policy: BrokerPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._triggers = triggers
        self._clock = clock
        self._policy = policy if policy is not None else BrokerPolicy()
        self._readings = readings
        self._metrics = metrics
        self._stream_interval = stream_interval
        self._stopping = asyncio.Event()

    def begin_shutdown(self) -> None:
        """Ask open streams to end; unary calls in flight still complete."""
        self._stopping.set()

    # -- the work ---------------------------------------------------------
    def _trigger(self, ref: pb.ScaledObjectRef) -> AnyTrigger:
        return self._triggers.parse(ref.scalerMetadata, ref.namespace, ref.name, wire=_wire(ref))

    async def _evaluate(self, trigger: AnyTrigger, ref: pb.ScaledObjectRef) -> tuple[float, bool]:
        """(value, active) for the trigger, from a shared broker read, once the broker
        policy allows every address the read would dial."""
        await self._policy.check(trigger.destinations)
        adapter = self._triggers.adapter_for(trigger)
        sample = await self._readings.read(
            trigger.scaler_type, trigger.read_key, lambda: adapter.read(trigger.query)
        )
        value, active = trigger.evaluate(sample, self._clock())
        if ref.namespace or ref.name:
            self._metrics.set_workload(
                ref.namespace, ref.name, trigger.metric_name, value, active,
                age=value if trigger.measures_age else None,
            )  # fmt: skip
        return value, active

    def _spec(self, ref: pb.ScaledObjectRef) -> pb.GetMetricSpecResponse:
        """Answered whenever a name and target can be derived (Triggers.spec): KEDA
        would hide an error here, so metadata errors are left to GetMetrics."""
        name, target = self._triggers.spec(
            ref.scalerMetadata, ref.namespace, ref.name, wire=_wire(ref)
        )
        spec = pb.MetricSpec(
            metricName=name,
            targetSize=max(1, _as_int64(target)),
            targetSizeFloat=target,
        )
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    # -- bookkeeping: one place turns errors into statuses -----------------
    async def _unary(
        self,
        method: str,
        ref: pb.ScaledObjectRef,
        context: grpc.aio.ServicerContext,
        work: Callable[[], Awaitable[T]],
    ) -> T:
        started = time.perf_counter()
        code: str | None = "OK"
        try:
            return await work()
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception as exc:
            # Counted before the status goes out: a client that reads /metrics after
            # its error must find the call counted.
            failed = exc.code if isinstance(exc, ScalerError) else "INTERNAL"
            self._metrics.observe_rpc(method, failed, time.perf_counter() - started)
            self._failed(method, ref, failed, exc)
            code = None
            await self._abort(method, ref, context, exc)
        finally:
            if code is not None:
                self._metrics.observe_rpc(method, code, time.perf_counter() - started)
                if code == "OK" and (ref.namespace or ref.name):
                    self._metrics.workload_call(ref.namespace, ref.name, code)

    def _failed(self, method: str, ref: pb.ScaledObjectRef, code: str, exc: Exception) -> None:
        """A call for a workload failed: count it per workload and code; a failed read
        leaves no value behind (its series go until a read succeeds)."""
        if not (ref.namespace or ref.name) or isinstance(exc, ShuttingDown):
            return
        metric: str | None = None
        if method != "GetMetricSpec":  # a read failed: its value is no longer current
            with contextlib.suppress(ScalerError):
                metric, _ = self._triggers.spec(dict(ref.scalerMetadata), ref.namespace, ref.name)
        self._metrics.workload_failed(ref.namespace, ref.name, code, metric=metric)

    @staticmethod
    async def _abort(
        method: str, ref: pb.ScaledObjectRef, context: grpc.aio.ServicerContext, exc: Exception
    ) -> NoReturn:
        """End the call with the error's status; anything not a ScalerError is a bug,
        logged with its traceback and answered INTERNAL."""
        if isinstance(exc, ScalerError):
            message = capped(exc.message)
            if not isinstance(exc, ShuttingDown):
                log.warning("%s %s: %s %s", method, _who(ref), exc.code, message)
            await context.abort(grpc.StatusCode[exc.code], message)
        else:
            log.error("%s %s failed unexpectedly: %s", method, _who(ref), unexpected(exc))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the scaler's log")
        raise AssertionError("context.abort returned")  # it raises

    # -- RPCs --------------------------------------------------------------
    async def GetMetricSpec(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricSpecResponse:
        async def work() -> pb.GetMetricSpecResponse:
            return self._spec(request)

        return await self._unary("GetMetricSpec", request, context, work)

    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        ref = request.scaledObjectRef

        async def work() -> pb.GetMetricsResponse:
            trigger = self._trigger(ref)
            asked = request.metricName
            if (
                asked
                and _KEDA_PREFIX.sub("", asked) != trigger.metric_name
                and asked != trigger.metric_name
            ):
                raise MetadataError(
                    f'metric name "{quoted(asked)}" is not this trigger\'s metric '
                    f'"{quoted(trigger.metric_name)}" (from GetMetricSpec)'
                )
            value, _ = await self._evaluate(trigger, ref)
            metric = pb.MetricValue(
                metricName=asked or trigger.metric_name,
                metricValue=_as_int64(value),
                metricValueFloat=value,
            )
            return pb.GetMetricsResponse(metricValues=[metric])

        return await self._unary("GetMetrics", ref, context, work)

    async def IsActive(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.IsActiveResponse:
        async def work() -> pb.IsActiveResponse:
            trigger = self._trigger(request)
            _, active = await self._evaluate(trigger, request)
            return pb.IsActiveResponse(result=active)

        return await self._unary("IsActive", request, context, work)

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.IsActiveResponse]:
        """Sends the state at open and on every change; re-checks every stream_interval."""

        async def states() -> AsyncIterator[pb.IsActiveResponse]:
            trigger = self._trigger(request)
            last: bool | None = None
            while not self._stopping.is_set():
                _, active = await self._evaluate(trigger, request)
                if active != last:
                    last = active
                    yield pb.IsActiveResponse(result=active)
                await self._pause()
            raise ShuttingDown("the scaler is shutting down; reconnect to another replica")

        async for item in self._stream("StreamIsActive", request, context, states()):
            yield item

    async def StreamMetricSpec(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """Sends the spec at open; it only changes with the metadata, which KEDA
        changes by reopening the stream. Stays open until the client or the server
        ends it."""

        async def specs() -> AsyncIterator[pb.GetMetricSpecResponse]:
            yield self._spec(request)
            await self._stopping.wait()
            raise ShuttingDown("the scaler is shutting down; reconnect to another replica")

        async for item in self._stream("StreamMetricSpec", request, context, specs()):
            yield item

    async def _pause(self) -> None:
        try:
            async with asyncio.timeout(self._stream_interval):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _stream(
        self,
        method: str,
        ref: pb.ScaledObjectRef,
        context: grpc.aio.ServicerContext,
        items: AsyncIterator[T],
    ) -> AsyncIterator[T]:
        started = time.perf_counter()
        code: str | None = "OK"
        counted = method == "StreamIsActive"
        if counted:
            self._metrics.streams_open.inc()
        try:
            async for item in items:
                yield item
        except asyncio.CancelledError:
            code = "CANCELLED"  # the client went away: the normal end of a stream
            raise
        except Exception as exc:
            code = exc.code if isinstance(exc, ScalerError) else "INTERNAL"
            if counted:
                self._metrics.streams_open.dec()
                counted = False
            self._metrics.observe_rpc(method, code, time.perf_counter() - started)
            self._failed(method, ref, code, exc)
            code = None
            await self._abort(method, ref, context, exc)
        finally:
            if counted:
                self._metrics.streams_open.dec()
            if code is not None:
                self._metrics.observe_rpc(method, code, time.perf_counter() - started)
