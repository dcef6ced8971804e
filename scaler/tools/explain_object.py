"""``keda-queue-scaler explain`` for ScaledObjects: call the scaler as KEDA and the HPA
do, and say what KEDA's activation, the HPA's next sync and the cooldown will do to
the scale target (arithmetic: :mod:`scaler.keda.scaledobject`).

The calls are a ScaledJob's (:meth:`scaler.tools.client.Caller.poll`): GetMetricSpec,
then GetMetrics and IsActive per spec. The current replicas come from ``--replicas``,
else the scale target's ``spec.replicas`` in the same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scaler.documents import Doc, mapping, path, text
from scaler.keda.manifest import ManifestError
from scaler.keda.scaledobject import (
    MetricReading,
    ObjectDecision,
    ScaledObject,
    decide,
    from_manifest,
    target_of,
)
from scaler.tools.client import Caller, Polled, dump_json
from scaler.tools.files import FileObjects

ObjectResult = tuple[ScaledObject, list[Polled], ObjectDecision]


def _target(docs: Sequence[object], doc: Doc) -> Doc | None:
    kind, name = target_of(doc)
    namespace = text(mapping(doc.get("metadata")).get("namespace"), "default")
    for d in docs:
        if not isinstance(d, dict) or d.get("kind") != kind:
            continue
        meta = mapping(d.get("metadata"))
        if text(meta.get("name")) == name and text(meta.get("namespace"), "default") == namespace:
            return d
    return None


def load_objects(
    docs: Sequence[object], objects: FileObjects, env: Mapping[str, str]
) -> list[tuple[ScaledObject, int | None]]:
    """Every ScaledObject in ``docs``, read with its scale target from the same file
    (its containers resolve ``...FromEnv``), and that target's ``spec.replicas``
    (None: the target is not in the file)."""
    out = []
    for d in docs:
        if not isinstance(d, dict) or d.get("kind") != "ScaledObject":
            continue
        namespace = text(mapping(d.get("metadata")).get("namespace"), "default")
        target = _target(docs, d)
        scaled = from_manifest(d, target, env=env, lookup=objects.lookup(namespace))
        replicas = None
        if target is not None:
            raw = path(target, "spec", "replicas")
            replicas = 1 if raw is None else raw if isinstance(raw, int) else None
        out.append((scaled, replicas))
    return out


def readings(scaled: ScaledObject, polled: Sequence[Polled]) -> list[MetricReading]:
    """The metrics the HPA reads, one per served spec; a trigger whose GetMetricSpec
    failed has none (KEDA cannot build its HPA metric), shown as an error."""
    out = []
    for i, p in enumerate(polled):
        if not p.served:
            continue
        metric_type = scaled.triggers[i].metric_type
        if p.reading.error is not None:
            out.append(MetricReading(f"s{i}", metric_type, 0.0, 1.0, False, p.reading.error))
            continue
        for s in p.reading.specs:
            name = f"s{i}-{s.metric_name}"
            out.append(MetricReading(name, metric_type, s.queue_length, s.target or 1.0,
                                     s.active, s.error))  # fmt: skip
    return out


async def explain_objects(
    objects: Sequence[tuple[ScaledObject, int | None]],
    *,
    replicas: int | None,
    address: str | None,
    caller: Caller,
) -> list[ObjectResult]:
    out = []
    for scaled, in_file in objects:
        current = replicas if replicas is not None else in_file
        if current is None:
            raise ManifestError(
                f"ScaledObject {scaled.namespace}/{scaled.name}: its scale target "
                f"{scaled.target} is not in the file; give --replicas N (its replicas now)"
            )
        polled = [
            await caller.poll(scaled, i, address or t.scaler_address)
            for i, t in enumerate(scaled.triggers)
        ]
        decision = decide(scaled.spec, readings(scaled, polled), replicas=current)
        out.append((scaled, polled, decision))
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"


def notes(scaled: ScaledObject, polled: Sequence[Polled], decision: ObjectDecision) -> list[str]:
    out = [str(u) for u in scaled.unresolved]
    out.extend(decision.notes)
    for i, p in enumerate(polled):
        if not p.served:
            out.append(f"trigger {i} is KEDA's own ({p.trigger.type}): not read here, not counted")
        elif p.reading.error is not None:
            out.append(f"trigger {i}: GetMetricSpec failed, so KEDA cannot create the HPA's "
                       "metric for it (ScaledObject Ready False, an event on it)")  # fmt: skip
        elif any(s.error for s in p.reading.specs):
            out.append(f"trigger {i}: GetMetrics failed: a KEDAScalerFailed Warning event on "
                       "the ScaledObject, and the HPA reports FailedGetExternalMetric")  # fmt: skip
    return out


def render_text(results: Sequence[ObjectResult]) -> str:
    lines: list[str] = []
    for scaled, polled, d in results:
        spec = scaled.spec
        idle = (
            ""
            if spec.idle_replica_count is None
            else f", idleReplicaCount {spec.idle_replica_count}"
        )
        lines.append(
            f"ScaledObject {scaled.namespace}/{scaled.name} -> {scaled.target}: pollingInterval "
            f"{scaled.polling_interval}s, cooldownPeriod {spec.cooldown_period}s, minReplicaCount "
            f"{spec.min_replica_count}, maxReplicaCount {spec.max_replica_count}{idle}"
        )
        lines.append(f"replicas now: {d.replicas}; the HPA KEDA creates: minReplicas "
                     f"{d.hpa_min}, maxReplicas {d.hpa_max}")  # fmt: skip
        lines.append("")
        metrics = iter(zip(d.metrics, d.per_metric, strict=True))
        for i, p in enumerate(polled):
            scaler_type = p.trigger.metadata.get("scalerType", "?")
            lines.append(f"trigger {i} ({p.trigger.type}, scalerType {scaler_type}, "
                         f"metricType {p.trigger.metric_type})")  # fmt: skip
            if not p.served:
                lines.append("  not served by this scaler: KEDA evaluates it itself")
                lines.append("")
                continue
            count = 1 if p.reading.error is not None else len(p.reading.specs)
            for _ in range(count):
                m, wanted = next(metrics)
                lines.append(f"  metric      {m.metric_name}")
                if m.error:
                    lines.append(f"  error       {m.error}")
                    continue
                per = "per replica" if m.metric_type == "AverageValue" else "in all"
                lines.append(f"  value       {_fmt(m.value)}  (target {_fmt(m.target)} {per})")
                lines.append(f"  active      {'yes' if m.active else 'no'}")
                if wanted is not None:
                    lines.append(f"  HPA wants   {wanted} replicas (before its bounds)")
            lines.append("")
        lines.append(f"KEDA this poll: {d.keda}")
        hpa = ("does nothing (the target is at 0)" if d.hpa_replicas is None
               else f"{d.hpa_replicas} replicas")  # fmt: skip
        lines.append(f"HPA next sync: {hpa}")
        lines.append(f"replicas next: {d.next_replicas}; settles at {d.settles_at} "
                     "if the queue stays as it is")  # fmt: skip
        for note in notes(scaled, polled, d):
            lines.append(f"  note: {note}")
        lines.append("  note: the HPA's behavior (rate limits, stabilization windows) sets how "
                     "fast it gets there; tolerance 0.1 (the controller's default)")  # fmt: skip
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_json(result: ObjectResult) -> dict[str, object]:
    scaled, polled, d = result
    return {
        "scaledObject": {"name": scaled.name, "namespace": scaled.namespace},
        "scaleTarget": scaled.target,
        "replicas": d.replicas,
        "active": d.active,
        "error": d.error,
        "hpaMinReplicas": d.hpa_min,
        "hpaMaxReplicas": d.hpa_max,
        "metrics": [
            {
                "metricName": m.metric_name,
                "metricType": m.metric_type,
                "value": m.value,
                "target": m.target,
                "active": m.active,
                "error": m.error,
                "hpaReplicas": n,
            }
            for m, n in zip(d.metrics, d.per_metric, strict=True)
        ],
        "keda": d.keda,
        "kedaReplicas": d.keda_replicas,
        "hpaReplicas": d.hpa_replicas,
        "nextReplicas": d.next_replicas,
        "settlesAt": d.settles_at,
        "notes": notes(scaled, polled, d),
    }


def render_json(results: Sequence[ObjectResult], *, indent: int | None = 2) -> str:
    return dump_json([to_json(r) for r in results], indent=indent)
