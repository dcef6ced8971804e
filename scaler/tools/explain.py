"""``keda-queue-scaler explain``: call the scaler like KEDA and say how many Jobs it
would create, and why (a ScaledObject's replicas: :mod:`scaler.tools.explain_object`).

For each trigger of a ScaledJob manifest it makes KEDA's calls in KEDA's order
(DESIGN §2): GetMetricSpec; then, for every spec, GetMetrics (the ``s<N>-`` prefix
stripped) and IsActive, retried once after a failure as KEDA's scalers cache does.
The answers go through :mod:`scaler.keda.scaledjob`, KEDA's own arithmetic, for the
manifest's strategy and, for comparison, the others.

What a failure means in a cluster is said too: a failing GetMetricSpec is silent
(operator log only, the trigger contributes nothing), a failing GetMetrics or
IsActive is a ``KEDAScalerFailed`` Warning event on the ScaledJob.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from scaler.documents import Doc, mapping, mappings, path
from scaler.errors import AuthError, ScalerError
from scaler.keda.manifest import ManifestError, ScaledJob, from_manifest
from scaler.keda.scaledjob import (
    STRATEGIES,
    Decision,
    decide,
)
from scaler.keda.scaledobject import ScaledObject
from scaler.kube import auth
from scaler.metadata import UnknownKey, unknown_keys
from scaler.registry import KINDS, kind_name
from scaler.tools.client import Caller, Polled, dump_json
from scaler.tools.explain_object import load_objects
from scaler.tools.files import FileError, FileObjects

SILENT = (
    "GetMetricSpec failed: KEDA drops this trigger for the poll silently (operator log "
    "only, no event, the ScaledJob stays Ready)"
)


VISIBLE = "KEDA raises a KEDAScalerFailed Warning event with this message and skips the spec"


Objects = list[tuple[ScaledObject, int | None]]


def load_manifests(path: Path, env: Mapping[str, str]) -> tuple[list[ScaledJob], Objects]:
    """Every ScaledJob and ScaledObject in a YAML file (other kinds are read only as
    what they give them), with the Secrets, ConfigMaps and
    (Cluster)TriggerAuthentications the same file holds: they fill the Job
    container's environment and each trigger's ``authenticationRef``, as the
    cluster's objects do for ``--from-cluster`` and the scaler's ``--kubernetes``. A
    ScaledObject's ``...FromEnv`` come from its scale target, when the file holds it;
    with it comes the target's replica count (None otherwise)."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {exc}") from exc
    try:
        objects = FileObjects.of(docs)
    except FileError as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    jobs = []
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "ScaledJob":
            namespace = str(mapping(d.get("metadata")).get("namespace") or "default")
            job = from_manifest(d, env=env, lookup=objects.lookup(namespace))
            jobs.append(with_auth(job, d, objects))
    try:
        scaled = load_objects(docs, objects, env)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    if not jobs and not scaled:
        kinds = (
            ", ".join(sorted({str(d.get("kind")) for d in docs if isinstance(d, dict)})) or "none"
        )
        raise ManifestError(f"{path} holds no ScaledJob or ScaledObject (kinds found: {kinds})")
    return jobs, scaled


def with_auth(job: ScaledJob, doc: Doc, objects: FileObjects) -> ScaledJob:
    """Each external trigger's ``authenticationRef`` resolved from ``objects`` and put
    onto its metadata as the scaler's ``--kubernetes`` does (:mod:`scaler.kube.auth`);
    the outcome is the trigger's note. KEDA itself forwards none of it (keda#2571)."""
    raw = mappings(path(doc, "spec", "triggers"))
    triggers = []
    for i, trigger in enumerate(job.triggers):
        ref = mapping(raw[i].get("authenticationRef")) if i < len(raw) else {}
        if not ref.get("name") or not trigger.external:
            triggers.append(trigger)
            continue
        ref_kind = str(ref.get("kind") or auth.NAMESPACED_KIND)
        where = f"{job.namespace}/" if ref_kind == auth.NAMESPACED_KIND else ""
        what = f"{ref_kind} {where}{ref['name']}"
        present = (
            objects.trigger_authentication(job.namespace, str(ref["name"]))
            if ref_kind == auth.NAMESPACED_KIND
            else objects.cluster_trigger_authentication(str(ref["name"]))
        )
        kind = KINDS.get(kind_name(trigger.metadata))
        keys = kind.metadata if kind is not None else None
        if present is None:
            note = (
                f"its authenticationRef ({what}) is not in the files given, so none of its "
                "parameters reach the scaler here; in a cluster the scaler resolves it with "
                "--kubernetes (KEDA forwards nothing to an external scaler)"
            )
        else:
            try:
                resolved = auth.resolve(objects, job.namespace, job.name, trigger.metadata, keys)
                if resolved is None:
                    raise AuthError(f"no trigger of {job.name} matches")
                merged, only = auth.apply(trigger.metadata, resolved, keys)
            except ScalerError as exc:
                note = f"its authenticationRef ({what}) cannot be resolved: {exc.message}"
            else:
                trigger = dataclasses.replace(trigger, metadata=merged)
                note = (
                    f"parameters {', '.join(sorted(resolved.params)) or '(none)'} from {what} "
                    "(in the files given), as the scaler's --kubernetes applies them"
                )
                if only:
                    note += (
                        f"; {', '.join(sorted(only))} (broker TLS) cannot travel as metadata: "
                        "the scaler applies them only with --kubernetes"
                    )
        triggers.append(dataclasses.replace(trigger, auth_note=note))
    return dataclasses.replace(job, triggers=tuple(triggers))


Result = tuple[ScaledJob, list[Polled], Decision]


async def explain(
    jobs: Sequence[ScaledJob],
    *,
    running: int,
    pending: int,
    address: str | None,
    caller: Caller,
) -> list[Result]:
    out = []
    for job in jobs:
        polled = []
        for i, t in enumerate(job.triggers):
            where = address or t.scaler_address
            found = await _states(job, i, await caller.poll(job, i, where), where, caller)
            polled.append(await _beside(job, i, found, where, caller))
        decision = decide(
            job.spec, [p.reading for p in polled if p.served], running=running, pending=pending
        )
        out.append((job, polled, decision))
    return out


async def _states(job: ScaledJob, index: int, polled: Polled, address: str,
                  caller: Caller) -> Polled:  # fmt: skip
    """A served trigger whose ``include`` names several states, with each state read
    alone, so that a user sees what the sum is made of (ready and active claims of
    ``keda-queue-scaler work``, a framework's ready and scheduled work)."""
    include = [s.strip() for s in polled.trigger.metadata.get("include", "").split(",")]
    include = [s for s in include if s]
    if not polled.served or len(include) < 2 or polled.reading.error:
        return polled
    found: list[tuple[str, float | str]] = []
    for state in include:
        trigger = dataclasses.replace(
            polled.trigger, metadata={**polled.trigger.metadata, "include": state}
        )
        triggers = (*job.triggers[:index], trigger, *job.triggers[index + 1 :])
        alone = await caller.poll(dataclasses.replace(job, triggers=triggers), index, address)
        specs = alone.reading.specs
        error = alone.reading.error or (specs[0].error if specs else "no metric spec")
        found.append((state, specs[0].queue_length if specs and not error else str(error)))
    return dataclasses.replace(polled, states=tuple(found))


#: The keys of one measure that the other does not take.
_AGE_KEYS = ("measure", "targetAge", "activationAge", "ageField")


async def _beside(job: ScaledJob, index: int, polled: Polled, address: str,
                  caller: Caller) -> Polled:  # fmt: skip
    """A served trigger with the other measure of its queue read beside it: the length
    of an age trigger, or the age of a length trigger whose items carry times."""
    metadata = polled.trigger.metadata
    if not polled.served or polled.reading.error or not metadata.get("scalerType"):
        return polled  # another external scaler's keys are its own
    ages = metadata.get("measure", "").strip() == "age"
    other = {k: v for k, v in metadata.items() if k not in _AGE_KEYS or k == "ageField"}
    if ages:
        other.pop("ageField", None)
    else:
        other.update({"measure": "age", "targetAge": "1"})
    trigger = dataclasses.replace(polled.trigger, metadata=other)
    triggers = (*job.triggers[:index], trigger, *job.triggers[index + 1 :])
    alone = await caller.poll(dataclasses.replace(job, triggers=triggers), index, address)
    specs = alone.reading.specs
    if alone.reading.error or not specs or specs[0].error:
        return polled  # no times to read (a length trigger's items may carry none)
    return dataclasses.replace(polled, beside=("length" if ages else "age", specs[0].queue_length))


def unknown(polled: Polled) -> tuple[UnknownKey, ...]:
    """The keys of one of our triggers that its scalerType does not read (typos)."""
    kind = KINDS.get(kind_name(polled.trigger.metadata))
    if not polled.served or kind is None:
        return ()
    return unknown_keys(kind.metadata, polled.trigger.metadata)


def failed(polled: Polled) -> bool:
    """Every call of a served trigger failed (or it gave no spec)."""
    r = polled.reading
    return polled.served and (r.error is not None or all(s.error for s in r.specs))


def notes(job: ScaledJob, polled: Sequence[Polled], decision: Decision) -> list[str]:
    """What a user should know about this poll, beyond the numbers."""
    out = [str(u) for u in job.unresolved]
    strategy = job.spec.scaling_strategy
    if strategy.strategy != strategy.effective:
        out.append(
            f"customScalingRunningJobPercentage {strategy.custom_scaling_running_job_percentage!r}"
            " is not a number KEDA parses: KEDA uses the default strategy"
        )
    if decision.running < decision.min_replicas:
        out.append(
            f"{decision.running} running < minReplicaCount {decision.min_replicas}: KEDA only "
            f"tops up to the minimum this poll"
        )
    elif job.spec.min_replicas() > 0:
        out.append(
            f"minReplicaCount {decision.min_replicas} keeps the ScaledJob active and is "
            f"subtracted from maxReplicaCount and from the running Jobs"
        )
    if not decision.active:
        out.append("no trigger is active: KEDA creates no Jobs")
    for i, p in enumerate(polled):
        if p.states:
            parts = " + ".join(
                f"{state} {_fmt(v) if isinstance(v, float) else f'(failed: {v})'}"
                for state, v in p.states
            )
            out.append(f"trigger {i} counts {parts} (include)")
        if p.beside is not None:
            measure, value = p.beside
            if measure == "length":
                out.append(f"trigger {i} measures age (seconds); its queue holds {_fmt(value)} "
                           "ready items")  # fmt: skip
            else:
                out.append(f"trigger {i}: its oldest ready item has waited {_fmt(value)} s "
                           "(measure: age would scale on that; docs/age.md)")  # fmt: skip
        for err in p.retried:
            out.append(f"a call failed once ({err}); KEDA's retry succeeded, as here")
        scaler_type = kind_name(p.trigger.metadata)
        out.extend(f"trigger {i}: {u.describe(scaler_type)}" for u in unknown(p))
        if p.trigger.auth_note:
            out.append(f"trigger {i}: {p.trigger.auth_note}")
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"


def render_text(results: Sequence[Result], *, color: bool) -> str:
    bold = ("\033[1m", "\033[0m") if color else ("", "")
    lines: list[str] = []
    for job, polled, decision in results:
        spec = job.spec
        lines.append(
            f"ScaledJob {job.namespace}/{job.name}: pollingInterval {job.polling_interval}s, "
            f"minReplicaCount {decision.min_replicas}, maxReplicaCount "
            f"{'unset' if spec.max_replica_count is None else spec.max_replica_count} "
            f"(KEDA's limit above the minimum: {decision.max_replicas})"
        )
        lines.append(f"Jobs now: {decision.running} running, {decision.pending} of them pending")
        lines.append("")
        for i, p in enumerate(polled):
            scaler_type = p.trigger.metadata.get("scalerType", "?")
            lines.append(f"trigger {i} ({p.trigger.type}, scalerType {scaler_type})")
            if not p.served:
                lines.append("  not served by this scaler: KEDA evaluates this built-in trigger")
                lines.append("  itself, so its value is not known here and not counted below")
            elif p.reading.error is not None:
                lines.append(f"  error       {p.reading.error}")
                lines.append(f"  {SILENT}")
            else:
                targets = [s.target for s in p.reading.specs]
                mean = sum(targets) / len(targets)
                first = p.reading.specs[0].metric_name
                for s in p.reading.specs:
                    lines.append(f"  metric      s{i}-{s.metric_name}")
                    if s.error:
                        lines.append(f"  error       {s.error}")
                        lines.append(f"  {VISIBLE}")
                        continue
                    # KEDA counts only values named like the trigger's first spec.
                    queue = s.queue_length if s.metric_name == first else 0.0
                    wanted = min(queue / mean, decision.max_replicas) if mean else 0.0
                    per = f"target {_fmt(mean)}"
                    if len(targets) > 1:
                        per = f"mean {per} of {len(targets)} specs"
                    lines.append(
                        f"  value       {_fmt(queue)}  ({per} per Job: {_fmt(wanted)} Jobs wanted)"
                    )
                    lines.append(f"  active      {'yes' if s.active else 'no'}")
            lines.append("")
        calculation = spec.scaling_strategy.calculation
        lines.append(
            f"Jobs KEDA would create this poll (queue {decision.scale_to}, maxScale "
            f"{decision.max_scale}, {calculation} of active triggers, "
            f"{'active' if decision.active else 'not active'}):"
        )
        own = spec.scaling_strategy.strategy
        for strategy in STRATEGIES:
            mine = strategy == own
            marker = ">" if mine else " "
            note = "   <- this ScaledJob's scalingStrategy" if mine else ""
            text = f"  {marker} {strategy:<9}{decision.by_strategy[strategy]:>5}{note}"
            lines.append(f"{bold[0]}{text}{bold[1]}" if mine else text)
        for note in notes(job, polled, decision):
            lines.append(f"  note: {note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def job_json(result: Result) -> dict[str, object]:
    job, polled, decision = result
    strategy = job.spec.scaling_strategy
    return {
        "scaledJob": {"name": job.name, "namespace": job.namespace},
        "strategy": strategy.strategy,
        "effectiveStrategy": strategy.effective,
        "jobsToCreate": decision.jobs,
        "byStrategy": decision.by_strategy,
        "active": decision.active,
        "queueLength": decision.scale_to,
        "maxScale": decision.max_scale,
        "effectiveMaxScale": decision.effective_max_scale,
        "running": decision.running,
        "pending": decision.pending,
        "minReplicaCount": decision.min_replicas,
        "maxReplicaCount": decision.max_replicas,
        "triggers": [_trigger_json(i, p) for i, p in enumerate(polled)],
        "notes": notes(job, polled, decision),
    }


def render_json(results: Sequence[Result], *, indent: int | None = 2) -> str:
    return dump_json([job_json(r) for r in results], indent=indent)


def _trigger_json(index: int, p: Polled) -> dict[str, object]:
    r = p.reading
    first = r.specs[0] if r.specs else None
    out: dict[str, object] = {
        "type": p.trigger.type,
        "scalerType": p.trigger.metadata.get("scalerType"),
        "servedByThisScaler": p.served,
        "error": r.error,
        "errorVisibleInCluster": False if r.error else None,
        "metricName": first.metric_name if first else None,
        "value": first.queue_length if first else None,
        "target": first.target if first else None,
        "active": any(s.active for s in r.specs) if r.specs else None,
        "specs": [
            {
                "metricName": f"s{index}-{s.metric_name}",
                "values": list(s.values),
                "target": s.target,
                "active": s.active,
                "error": s.error,
                "errorVisibleInCluster": True if s.error else None,
            }
            for s in r.specs
        ],
    }
    if p.states:
        out["states"] = dict(p.states)
    if p.beside is not None:
        out[p.beside[0]] = p.beside[1]
    if found := unknown(p):
        out["unknownKeys"] = [{"key": u.key, "closest": u.closest} for u in found]
    if first is not None and first.error:
        out["error"] = first.error
        out["errorVisibleInCluster"] = True
    return out


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ManifestError(f"--env {pair!r} must be NAME=VALUE")
        env[name] = value
    return env


def read_env_file(path: str) -> dict[str, str]:
    """NAME=VALUE lines (blank lines and # comments skipped); ``-`` is stdin."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ManifestError(f"cannot read --env-file {path}: {exc.strerror}") from exc
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line for line in lines if line and not line.startswith("#")]
    try:
        return parse_env(pairs)
    except ManifestError:
        raise ManifestError(f"--env-file {path}: every line must be NAME=VALUE") from None


def wants_color() -> bool:
    return sys.stdout.isatty()
