"""``keda-queue-scaler explain``: call the scaler like KEDA and say how many Jobs it
would create, and why.

For each trigger of a ScaledJob manifest: GetMetricSpec, GetMetrics for the first
spec's metric name, IsActive — the calls and order of KEDA's poll — then the
ScaledJob arithmetic of :mod:`scaler.kedamodel` for every scaling strategy, with the
manifest's own highlighted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc

from scaler.kedamodel import (
    STRATEGIES,
    Decision,
    ManifestError,
    ScaledJobSpec,
    TriggerReading,
    TriggerSpec,
    decide,
    from_manifest,
    keda_value,
)
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

EXTERNAL_TYPES = ("external", "external-push")


def load_manifests(path: Path, env: Mapping[str, str]) -> list[ScaledJobSpec]:
    """Every ScaledJob in a YAML file (other kinds are ignored)."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {exc}") from exc
    jobs = [
        from_manifest(d, env=env)
        for d in docs
        if isinstance(d, dict) and d.get("kind") == "ScaledJob"
    ]
    if not jobs:
        kinds = (
            ", ".join(sorted({str(d.get("kind")) for d in docs if isinstance(d, dict)})) or "none"
        )
        raise ManifestError(f"{path} holds no ScaledJob (kinds found: {kinds})")
    return jobs


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

    async def poll(self, job: ScaledJobSpec, trigger: TriggerSpec, address: str) -> TriggerReading:
        """One trigger's poll, in KEDA's order; a failure becomes the reading's error."""
        if trigger.type not in EXTERNAL_TYPES:
            return TriggerReading(error=f"type {trigger.type!r} is not an external trigger")
        if not address:
            return TriggerReading(error="no scalerAddress in the metadata (or --address)")
        stub = self.stub(address)
        ref = pb.ScaledObjectRef(
            name=job.name, namespace=job.namespace, scalerMetadata=dict(trigger.metadata)
        )
        name = ""
        try:
            specs = (await stub.GetMetricSpec(ref, timeout=self._timeout)).metricSpecs
            if not specs:
                return TriggerReading(error="GetMetricSpec returned no metric spec")
            first = specs[0]
            name = first.metricName
            target = first.targetSizeFloat if first.targetSizeFloat > 0 else float(first.targetSize)
            request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName=name)
            reply = await stub.GetMetrics(request, timeout=self._timeout)
            values = tuple(
                keda_value(v.metricValue, v.metricValueFloat)
                for v in reply.metricValues
                if v.metricName == name
            )
            active = (await stub.IsActive(ref, timeout=self._timeout)).result
        except grpc.aio.AioRpcError as exc:
            return TriggerReading(metric_name=name, error=f"{exc.code().name}: {exc.details()}")
        return TriggerReading(metric_name=name, values=values, target=target, active=active)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


async def explain(
    jobs: Sequence[ScaledJobSpec],
    *,
    running: int,
    pending: int,
    address: str | None,
    caller: Caller,
) -> list[tuple[ScaledJobSpec, list[tuple[TriggerSpec, TriggerReading]], Decision]]:
    out = []
    for job in jobs:
        readings = [
            (t, await caller.poll(job, t, address or t.scaler_address)) for t in job.triggers
        ]
        decision = decide(job, [r for _, r in readings], running=running, pending=pending)
        out.append((job, readings, decision))
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"


def render_text(
    results: Sequence[tuple[ScaledJobSpec, list[tuple[TriggerSpec, TriggerReading]], Decision]],
    *,
    color: bool,
) -> str:
    bold = ("\033[1m", "\033[0m") if color else ("", "")
    lines: list[str] = []
    for job, readings, decision in results:
        lines.append(
            f"ScaledJob {job.namespace}/{job.name}: pollingInterval {job.polling_interval}s, "
            f"minReplicaCount {job.min_replica_count}, maxReplicaCount {job.max_replica_count}"
        )
        lines.append(f"Jobs now: {decision.running} running, {decision.pending} of them pending")
        lines.append("")
        for i, (trigger, reading) in enumerate(readings):
            scaler_type = trigger.metadata.get("scalerType", "?")
            lines.append(f"trigger {i} ({trigger.type}, scalerType {scaler_type})")
            if reading.error:
                lines.append(f"  error       {reading.error}")
                lines.append("  KEDA skips this trigger for the poll and raises a Warning event")
            else:
                wanted = reading.max_scale(job.max_replica_count)
                lines.append(f"  metric      {reading.metric_name}")
                lines.append(
                    f"  value       {_fmt(reading.queue_length)}  (target {_fmt(reading.target)} "
                    f"per Job: {_fmt(wanted)} Jobs wanted)"
                )
                lines.append(f"  active      {'yes' if reading.active else 'no'}")
            lines.append("")
        lines.append(
            f"Jobs KEDA would create this poll (maxScale {decision.max_scale}, "
            f"{job.multiple_scalers_calculation} of active triggers):"
        )
        for strategy in STRATEGIES:
            mine = strategy == job.strategy
            marker = ">" if mine else " "
            note = "   <- this ScaledJob's scalingStrategy" if mine else ""
            text = f"  {marker} {strategy:<9}{decision.by_strategy[strategy]:>5}{note}"
            lines.append(f"{bold[0]}{text}{bold[1]}" if mine else text)
        notes = [r for r in decision.reasons if "skipped" in r or "KEDA" in r]
        for note in notes:
            lines.append(f"  note: {note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_json(
    results: Sequence[tuple[ScaledJobSpec, list[tuple[TriggerSpec, TriggerReading]], Decision]],
) -> str:
    out: list[dict[str, Any]] = []
    for job, readings, decision in results:
        out.append(
            {
                "scaledJob": {"name": job.name, "namespace": job.namespace},
                "strategy": job.strategy,
                "jobsToCreate": decision.jobs,
                "byStrategy": decision.by_strategy,
                "active": decision.active,
                "maxScale": decision.max_scale,
                "running": decision.running,
                "pending": decision.pending,
                "triggers": [
                    {
                        "type": t.type,
                        "scalerType": t.metadata.get("scalerType"),
                        "metricName": r.metric_name,
                        "value": r.queue_length,
                        "target": r.target,
                        "active": r.active,
                        "error": r.error,
                    }
                    for t, r in readings
                ],
                "reasons": list(decision.reasons),
                "settings": {
                    k: v
                    for k, v in asdict(job).items()
                    if k not in ("triggers", "name", "namespace")
                },
            }
        )
    return json.dumps(out if len(out) != 1 else out[0], indent=2) + "\n"


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ManifestError(f"--env {pair!r} must be NAME=VALUE")
        env[name] = value
    return env


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


def wants_color() -> bool:
    return sys.stdout.isatty()
