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
from google.protobuf.message import Message

from scaler.errors import MetadataError, ScalerError, ShuttingDown
from scaler.guard import BrokerPolicy, capped, quoted
from scaler.logs import unexpected
from scaler.metrics import Metrics, bounded_label
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.readings import Readings
from scaler.registry import Triggers
from scaler.trigger import AnyTrigger

log = logging.getLogger("scaler.service")

T = TypeVar("T")
_INT64_MAX = 2**63 - 1
_KEDA_PREFIX = re.compile(r"^s[0-9]+-")
SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name


def _as_int64(value: float) -> int:
    """The deprecated int field, still the only one KEDA < 2.17 reads."""
    return max(0, min(_INT64_MAX, round(value)))


def _wire(ref: pb.ScaledObjectRef) -> bytes:
    """The request's identity for Triggers' request map: its bytes, map keys sorted."""
    return ref.SerializeToString(deterministic=True)


def _who(ref: pb.ScaledObjectRef) -> str:
    return f"{ref.namespace}/{ref.name}" if ref.namespace or ref.name else "(unnamed)"


class _Warm:
    """What answering one known request again needs, worked out once: the request
    map's trigger, the workload's bounded metric labels and the GetMetricSpec answer.
    A request the request map holds always means the same trigger, so this is valid
    for as long as the map still returns that trigger (checked on every use)."""

    __slots__ = ("ages", "answer", "asked", "calls", "series", "spec", "trigger")

    # Answers are kept serialized (_serialize sends bytes as they are): a protobuf
    # message holds an arena of about 900 bytes, its bytes about 60.

    def __init__(self, trigger: AnyTrigger, ref: pb.ScaledObjectRef) -> None:
        self.trigger = trigger
        named = bool(ref.namespace or ref.name)
        labels = (bounded_label(ref.namespace), bounded_label(ref.name))
        #: the workload's value series and its OK calls series; None when unnamed
        self.series = (*labels, bounded_label(trigger.metric_name)) if named else None
        self.calls = (*labels, "OK") if named else None
        self.spec = _spec_response(trigger.metric_name, trigger.target).SerializeToString()
        self.ages = trigger.measures_age
        #: the last GetMetrics answer, for the metricName and value it was made for:
        #: a queue's value changes less often than KEDA asks for it
        self.answer: tuple[str, float, bytes] | None = None
        #: metricName values GetMetrics accepted for this trigger (KEDA's is
        #: "s<index>-<name>"), a few at most: others take the full path
        self.asked: set[str] = {"", trigger.metric_name}


def _metrics_response(name: str, value: float) -> pb.GetMetricsResponse:
    metric = pb.MetricValue(metricName=name, metricValue=_as_int64(value), metricValueFloat=value)
    return pb.GetMetricsResponse(metricValues=[metric])


_ACTIVE = pb.IsActiveResponse(result=True).SerializeToString()
_INACTIVE = pb.IsActiveResponse(result=False).SerializeToString()


def _spec_response(name: str, target: float) -> pb.GetMetricSpecResponse:
    spec = pb.MetricSpec(metricName=name, targetSize=max(1, _as_int64(target)),
                         targetSizeFloat=target)  # fmt: skip
    return pb.GetMetricSpecResponse(metricSpecs=[spec])


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
        self._hot = metrics.hot
        self._stream_interval = stream_interval
        self._stopping = asyncio.Event()
        #: request digest -> _Warm, for requests the request map holds (_warm_entry)
        self._warm: dict[bytes, _Warm] = {}

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
        return _spec_response(name, target)

    # -- the warm path: a request seen before, its reading cached -----------
    # KEDA repeats each ScaledJob's three calls every poll with the same request, so
    # nearly every call is one the request map knows, answered from the cache. These
    # answer such a call with the same result and the same metrics as the full path
    # (``_unary`` around ``work``), in a few steps instead of dozens; a call that
    # needs anything else (a parse, a policy decision, a broker read, an error) gets
    # None and takes the full path, before anything is counted.
    def _warm_entry(self, ref: pb.ScaledObjectRef) -> _Warm | None:
        request, trigger = self._triggers.recall(_wire(ref))
        if trigger is None:
            return None
        warm = self._warm.get(request)
        if warm is None or warm.trigger is not trigger:
            if len(self._warm) >= self._triggers.cache_size:
                self._warm.clear()  # rebuilt as calls come: each entry is cheap
            warm = self._warm[request] = _Warm(trigger, ref)
        return warm

    def _warm_value(self, warm: _Warm) -> tuple[float, bool] | None:
        trigger = warm.trigger
        if not self._policy.allowed(trigger.destinations):
            return None
        found, sample = self._readings.fresh(trigger.read_key)
        if not found:
            return None
        try:
            value, active = trigger.evaluate(sample, self._clock())
        except Exception:  # the full path answers it, with its status
            return None
        self._metrics.cache_hit(trigger.scaler_type)
        if warm.series is not None:
            self._metrics.set_series(warm.series, value, active, value if warm.ages else None)
        return value, active

    def _warm_done(self, method: str, warm: _Warm, started: float) -> None:
        self._hot.observe_rpc(method, "OK", time.perf_counter() - started)
        if warm.calls is not None:
            self._metrics.count_call(warm.calls)

    def _accepts(self, warm: _Warm, asked: str) -> bool:
        if asked in warm.asked:
            return True
        if _KEDA_PREFIX.sub("", asked) != warm.trigger.metric_name:
            return False  # the full path refuses it
        if len(warm.asked) < 4:
            warm.asked.add(asked)
        return True

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
    ) -> pb.GetMetricSpecResponse | bytes:
        started = time.perf_counter()
        warm = self._warm_entry(request)
        if warm is not None:
            self._warm_done("GetMetricSpec", warm, started)
            return warm.spec

        async def work() -> pb.GetMetricSpecResponse:
            return self._spec(request)

        return await self._unary("GetMetricSpec", request, context, work)

    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse | bytes:
        started = time.perf_counter()
        ref = request.scaledObjectRef
        asked = request.metricName
        warm = self._warm_entry(ref)
        if warm is not None and self._accepts(warm, asked):
            reading = self._warm_value(warm)
            if reading is not None:
                value = reading[0]
                answer = warm.answer
                if answer is None or answer[0] != asked or answer[1] != value:
                    answer = warm.answer = (asked, value, _metrics_response(
                        asked or warm.trigger.metric_name, value).SerializeToString())  # fmt: skip
                self._warm_done("GetMetrics", warm, started)
                return answer[2]

        async def work() -> pb.GetMetricsResponse:
            trigger = self._trigger(ref)
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
            return _metrics_response(asked or trigger.metric_name, value)

        return await self._unary("GetMetrics", ref, context, work)

    async def IsActive(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.IsActiveResponse | bytes:
        started = time.perf_counter()
        warm = self._warm_entry(request)
        if warm is not None:
            reading = self._warm_value(warm)
            if reading is not None:
                self._warm_done("IsActive", warm, started)
                return _ACTIVE if reading[1] else _INACTIVE

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


def _serialize(answer: Message | bytes) -> bytes:
    """An answer on the wire: a message, or bytes the warm path serialized before."""
    return answer if isinstance(answer, bytes) else answer.SerializeToString()


def add_to_server(service: ExternalScalerService, server: grpc.aio.Server) -> None:
    """Serve ``service`` as externalscaler.ExternalScaler: the generated
    ``add_ExternalScalerServicer_to_server``, with answers through ``_serialize``."""
    unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    ref, ask = pb.ScaledObjectRef.FromString, pb.GetMetricsRequest.FromString
    handlers = {
        "IsActive": unary(service.IsActive, ref, _serialize),
        "StreamIsActive": stream(service.StreamIsActive, ref, _serialize),
        "GetMetricSpec": unary(service.GetMetricSpec, ref, _serialize),
        "GetMetrics": unary(service.GetMetrics, ask, _serialize),
        "StreamMetricSpec": stream(service.StreamMetricSpec, ref, _serialize),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
