"""The gRPC client that ``explain``, ``demo`` and ``probe`` share: channels to
scalers (optional TLS), and one trigger's poll made as KEDA makes it (DESIGN §2):
GetMetricSpec; then, for every spec, GetMetrics and IsActive, retried once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from scaler.keda.manifest import ManifestError, TriggerSpec
from scaler.keda.scaledjob import (
    SpecReading,
    TriggerReading,
    metric_target,
    metric_value,
)
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

_ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$")


def check_address(address: str) -> str:
    """A scaler address as KEDA's scalerAddress takes it: host:port, no scheme."""
    if "://" in address:
        raise ManifestError(f"--address {address!r} must be host:port, without a scheme")
    if not _ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ManifestError(f"--address {address!r} must be host:port (port 1-65535)")
    return address


@dataclass(frozen=True)
class Polled:
    """One trigger's poll, as explain reports it."""

    trigger: TriggerSpec
    reading: TriggerReading
    served: bool = True  # False: a built-in trigger, evaluated by KEDA itself
    retried: tuple[str, ...] = ()  # errors of first attempts that the retry fixed
    #: With ``include`` naming several states: each state's own value (a GetMetrics
    #: with ``include`` set to that state alone), in the order given.
    states: tuple[tuple[str, float | str], ...] = ()
    #: The other measure of the same queue (docs/age.md), read beside it: ("length",
    #: n) for a trigger with ``measure: age``, ("age", seconds) for a length trigger
    #: whose items carry times; None when it cannot be read.
    beside: tuple[str, float] | None = None


class Workload(Protocol):
    """A ScaledJob or ScaledObject: what KEDA's calls name (ScaledObjectRef)."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def triggers(self) -> tuple[TriggerSpec, ...]: ...


def _status(exc: grpc.aio.AioRpcError) -> str:
    return f"{exc.code().name}: {exc.details()}"


class Caller:
    """gRPC channels to scalers, one per address, with optional TLS."""

    def __init__(
        self,
        *,
        timeout: float,
        credentials: grpc.ChannelCredentials | None,
        options: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._timeout = timeout
        self._credentials = credentials
        self._options = list(options)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def stub(self, address: str) -> pb_grpc.ExternalScalerStub:
        channel = self._channels.get(address)
        if channel is None:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(address, self._credentials, self._options)
            else:
                channel = grpc.aio.insecure_channel(address)
            self._channels[address] = channel
        return pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]

    async def poll(self, job: Workload, index: int, address: str) -> Polled:
        """Trigger ``index``'s poll, in KEDA's order; failures land in the reading."""
        trigger = job.triggers[index]
        if not trigger.external:
            return Polled(trigger, TriggerReading(), served=False)
        if not address:
            return Polled(
                trigger, TriggerReading(error="no scalerAddress in the metadata (or --address)")
            )
        stub = self.stub(address)
        ref = pb.ScaledObjectRef(
            name=job.name, namespace=job.namespace, scalerMetadata=dict(trigger.metadata)
        )
        try:
            specs = (await stub.GetMetricSpec(ref, timeout=self._timeout)).metricSpecs
        except grpc.aio.AioRpcError as exc:
            return Polled(trigger, TriggerReading(error=_status(exc)))
        if not specs:
            return Polled(trigger, TriggerReading(error="GetMetricSpec returned no metric spec"))
        readings = []
        retried = []
        for spec in specs:
            target = metric_target(spec.targetSize, spec.targetSizeFloat)
            try:
                values, active = await self._metrics_and_activity(stub, ref, spec.metricName)
            except grpc.aio.AioRpcError as first:
                try:  # KEDA rebuilds the scaler and tries once more
                    values, active = await self._metrics_and_activity(stub, ref, spec.metricName)
                except grpc.aio.AioRpcError as exc:
                    readings.append(SpecReading(spec.metricName, target, error=_status(exc)))
                    continue
                retried.append(_status(first))
            readings.append(SpecReading(spec.metricName, target, values, active))
        return Polled(trigger, TriggerReading(specs=tuple(readings)), retried=tuple(retried))

    async def _metrics_and_activity(
        self, stub: pb_grpc.ExternalScalerStub, ref: pb.ScaledObjectRef, name: str
    ) -> tuple[tuple[float, ...], bool]:
        """externalScaler.GetMetricsAndActivity: every value returned, then IsActive."""
        request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name)
        reply = await stub.GetMetrics(request, timeout=self._timeout)
        values = tuple(metric_value(v.metricValue, v.metricValueFloat) for v in reply.metricValues)
        active = (await stub.IsActive(ref, timeout=self._timeout)).result
        return values, active

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def credentials(
    ca: str | None, cert: str | None, key: str | None
) -> grpc.ChannelCredentials | None:
    if not (ca or cert):
        return None

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(read(ca), read(key), read(cert))


def channel_options(server_name: str | None) -> list[tuple[str, str]]:
    """Expect another name on the scaler's certificate than the address's host."""
    return [("grpc.ssl_target_name_override", server_name)] if server_name else []


def dump_json(out: Sequence[dict[str, object]], *, indent: int | None = 2) -> str:
    """explain's JSON: one report as an object, several as a list."""
    return json.dumps(out if len(out) != 1 else out[0], indent=indent) + "\n"
