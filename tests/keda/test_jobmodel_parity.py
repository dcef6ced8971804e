"""Differential test: our ScaledJob arithmetic (scaler.keda.scaledjob) against KEDA's.

Seeded random polls go to ``jobmodel`` (tests/keda/cmd/jobmodel), which answers them
with KEDA v2.21.0's exported functions and its real scale executor on a fake
Kubernetes client; the Python model must give the same answer for every one.
``KQS_PARITY_SCENARIOS`` and ``KQS_PARITY_SEED`` change the run (``make parity``).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from typing import Any

import pytest

from scaler.keda.scaledjob import (
    Decision,
    JobState,
    PodState,
    ScaledJobSpec,
    ScalingStrategy,
    SpecReading,
    TriggerReading,
    count_jobs,
    decide,
    metric_target,
    metric_value,
)
from tests.kedago import tools_dir

SCENARIOS = int(os.environ.get("KQS_PARITY_SCENARIOS", "20000"))
SEED = int(os.environ.get("KQS_PARITY_SEED", "20261129"))

pytestmark = [pytest.mark.keda, pytest.mark.usefixtures("keda_tools")]


def _value(rng: random.Random) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.45:
        return {"int": rng.randint(0, 60), "float": 0.0}
    if kind < 0.8:
        return {"int": 0, "float": round(rng.uniform(0, 60), rng.choice((0, 1, 3, 4, 6)))}
    return {
        "int": rng.choice((0, 5, -3, 10**9, 2**40)),
        "float": rng.choice((0.0, -1.5, 0.0004, 0.0005, 0.0015, 1e-9, 1e12, 2.5, 7.0)),
    }


def _spec(rng: random.Random, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "targetSize": rng.choice((0, 1, 1, 2, 3, 5, 10, -1)),
        "targetSizeFloat": rng.choice(
            (0.0, 0.0, 0.5, 1.0, 2.5, 0.0004, 0.0006, 0.1, 0.3, 1.2345, 3.0, 7.77)
        ),
        "values": [_value(rng) for _ in range(rng.choice((0, 1, 1, 1, 2, 3)))],
        "active": rng.random() < 0.75,
        "error": rng.random() < 0.08,
    }


def _pod(rng: random.Random) -> dict[str, Any]:
    conditions = {
        t: rng.choice(("True", "False"))
        for t in ("Ready", "PodScheduled", "ContainersReady")
        if rng.random() < 0.6
    }
    phase = rng.choice(("Pending", "Running", "Succeeded", "Failed", "Unknown"))
    return {"phase": phase, "conditions": conditions}


def _job(rng: random.Random) -> dict[str, Any]:
    conditions = rng.choice(
        (
            {}, {}, {}, {"Complete": "True"}, {"Failed": "True"}, {"Complete": "False"},
            {"Suspended": "True"}, {"Failed": "False", "FailureTarget": "True"},
        )
    )  # fmt: skip
    return {"conditions": conditions, "pods": [_pod(rng) for _ in range(rng.choice((0, 1, 1, 2)))]}


def scenario(rng: random.Random, ident: int) -> dict[str, Any]:
    triggers = []
    for _ in range(rng.randint(1, 4)):
        names = ["m", rng.choice(("m", "n"))][: rng.choice((1, 1, 2))]
        triggers.append({"specError": rng.random() < 0.08, "specs": [_spec(rng, n) for n in names]})
    big = rng.random() < 0.1
    return {
        "id": ident,
        "minReplicaCount": rng.choice((None, None, 0, 1, 2, 3, 5, 12)),
        "maxReplicaCount": rng.choice((None, 0, 1, 2, 4, 5, 10, 20, 200 if big else 30)),
        "strategy": rng.choice(("", "default", "custom", "accurate", "eager")),
        "customScalingQueueLengthDeduction": rng.choice((None, 0, 1, 3, -2)),
        "customScalingRunningJobPercentage": rng.choice(
            ("", "0.5", "1", "0", "0.25", "1.5", "abc", " 0.5", "1e-1", ".5", "2.", "Inf", "NaN")
        ),
        "multipleScalersCalculation": rng.choice(("", "max", "min", "avg", "sum")),
        "pendingPodConditions": rng.choice(
            ([], [], [], ["Ready"], ["Ready", "PodScheduled"], ["Ready", "Ready"])
        ),
        "triggers": triggers,
        "jobs": [_job(rng) for _ in range(rng.choice((0, 1, 3, 6, 12, 25 if big else 8)))],
        # Jobs another scale loop creates between KEDA's running and pending listings
        # (kedacore/keda#2488's two loops): that poll counts pending > running.
        "arriving": [
            {
                "conditions": {},
                "pods": [{"phase": "Pending", "conditions": {}}][: rng.randint(0, 1)],
            }
            for _ in range(rng.choice((0, 0, 0, 0, 0, 1, 2, 3)))
        ],
    }


def _states(jobs: list[dict[str, Any]]) -> list[JobState]:
    return [
        JobState(j["conditions"], tuple(PodState(p["phase"], p["conditions"]) for p in j["pods"]))
        for j in jobs
    ]


def _counts(s: dict[str, Any]) -> tuple[int, int]:
    """(running, pending) as KEDA counts them in that poll: running from its first
    listing of the Jobs, pending from its second, after the arriving Jobs."""
    jobs, conditions = _states(s["jobs"]), s["pendingPodConditions"]
    running, _ = count_jobs(jobs, conditions)
    _, pending = count_jobs(jobs + _states(s["arriving"]), conditions)
    return running, pending


def model(s: dict[str, Any]) -> tuple[Decision, str]:
    """Our answer: the scenario through scaler.keda.scaledjob."""
    strategy = ScalingStrategy(
        strategy=s["strategy"],
        custom_scaling_queue_length_deduction=s["customScalingQueueLengthDeduction"],
        custom_scaling_running_job_percentage=s["customScalingRunningJobPercentage"],
        pending_pod_conditions=tuple(s["pendingPodConditions"]),
        multiple_scalers_calculation=s["multipleScalersCalculation"],
    )
    spec = ScaledJobSpec(s["minReplicaCount"], s["maxReplicaCount"], strategy)
    readings = []
    for t in s["triggers"]:
        if t["specError"]:
            readings.append(TriggerReading(error="GetMetricSpec failed"))
            continue
        specs = tuple(
            SpecReading(
                metric_name=p["name"],
                target=metric_target(p["targetSize"], p["targetSizeFloat"]),
                values=tuple(metric_value(v["int"], v["float"]) for v in p["values"]),
                active=p["active"],
                error="GetMetrics failed" if p["error"] else None,
            )
            for p in t["specs"]
        )
        readings.append(TriggerReading(specs=specs))
    running, pending = _counts(s)
    decision = decide(spec, readings, running=running, pending=pending)
    return decision, decision.ready


def keda(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KEDA's answers, from the Go program."""
    payload = "".join(json.dumps(s) + "\n" for s in scenarios)
    done = subprocess.run(
        [str(tools_dir() / "jobmodel")],
        input=payload, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["id"] for a in answers] == [s["id"] for s in scenarios]
    return answers


def _ours(s: dict[str, Any]) -> dict[str, Any]:
    d, ready = model(s)
    return {
        "active": d.active, "isError": d.is_error, "scaleTo": d.scale_to,
        "maxScale": d.max_scale, "minReplicaCount": d.min_replicas,
        "maxReplicaCount": d.max_replicas, "created": d.jobs, "ready": ready,
    }  # fmt: skip


# 20,000 scenarios through KEDA's Go code and our model: about 20 s here, over 60 s
# beside two CPU burners and two other suites. Bounded work, not a hang: a wider limit.
@pytest.mark.timeout(900)
def test_random_scenarios_agree_with_keda() -> None:
    rng = random.Random(SEED)
    scenarios = [scenario(rng, i) for i in range(SCENARIOS)]
    answers = keda(scenarios)
    disagreements = []
    for s, theirs in zip(scenarios, answers, strict=True):
        ours = _ours(s)
        theirs = {k: v for k, v in theirs.items() if k != "id"}
        if ours != theirs:
            disagreements.append((s, ours, theirs))
    created = sum(a["created"] for a in answers)
    print(f"\n{len(scenarios)} scenarios (seed {SEED}), {created} Jobs created by KEDA, "
          f"{len(disagreements)} disagreements")  # fmt: skip
    # The scenarios must exercise what they claim to: every branch is reached.
    assert sum(a["active"] for a in answers) > SCENARIOS // 4
    assert sum(a["created"] > 0 for a in answers) > SCENARIOS // 8
    assert sum(a["isError"] for a in answers) > 0
    assert sum(pending > running for running, pending in map(_counts, scenarios)) > SCENARIOS // 100
    if disagreements:
        s, ours, theirs = disagreements[0]
        pytest.fail(
            f"{len(disagreements)} of {len(scenarios)} scenarios disagree; the first:\n"
            f"scenario: {json.dumps(s)}\nours: {ours}\nKEDA: {theirs}"
        )


# Named regressions: each was a disagreement once (issue 9), KEDA's answer pinned.
def _one(
    *,
    queue: float,
    target: float = 1,
    active: bool = True,
    name: str = "m",
) -> dict[str, Any]:
    return {
        "specError": False,
        "specs": [
            {"name": name, "targetSize": 0, "targetSizeFloat": target,
             "values": [{"int": 0, "float": queue}], "active": active, "error": False}
        ],
    }  # fmt: skip


def _running(n: int) -> list[dict[str, Any]]:
    return [{"conditions": {}, "pods": [{"phase": "Running", "conditions": {}}]}] * n


BASE: dict[str, Any] = {
    "minReplicaCount": None, "maxReplicaCount": None, "strategy": "",
    "customScalingQueueLengthDeduction": None, "customScalingRunningJobPercentage": "",
    "multipleScalersCalculation": "", "pendingPodConditions": [], "jobs": [], "arriving": [],
}  # fmt: skip

REGRESSIONS = {
    # KEDA's MaxReplicaCount() is max - min: 8 more, not 10.
    "max minus min": (
        {
            "minReplicaCount": 2,
            "maxReplicaCount": 10,
            "triggers": [_one(queue=50)],
            "jobs": _running(2),
        },
        8,
    ),
    # Below the minimum KEDA only tops up to it.
    "top up to min": ({"minReplicaCount": 2, "triggers": [_one(queue=10)], "jobs": _running(1)}, 1),
    # min > 0 makes the ScaledJob active even when no trigger is.
    "min makes active": (
        {"minReplicaCount": 2, "triggers": [_one(queue=5, active=False)]},
        2,
    ),
    # max picks the trigger by queue length, then uses its value: queue 10 / target 10.
    "max by queue": (
        {"triggers": [_one(queue=10, target=10), _one(queue=5, target=1)]},
        1,
    ),
    # KEDA creates min(ceil(queue), effective max): 3, not 6.
    "ceil of queue": ({"triggers": [_one(queue=3, target=0.5)]}, 3),
    # A Job made between KEDA's two listings: running 1, pending 2 (an e2e poll's
    # counts); accurate takes maxScale - pending = 3 - 2.
    "pending above running": (
        {
            "strategy": "accurate",
            "maxReplicaCount": 20,
            "triggers": [_one(queue=3)],
            "jobs": [{"conditions": {}, "pods": [{"phase": "Pending", "conditions": {}}]}],
            "arriving": [{"conditions": {}, "pods": []}],
        },
        1,
    ),
}


@pytest.mark.parametrize("label", list(REGRESSIONS))
def test_named_regressions(label: str) -> None:
    overrides, expected = REGRESSIONS[label]
    s = {**BASE, "id": 0, **overrides}
    (theirs,) = keda([s])
    assert theirs["created"] == expected
    assert _ours(s)["created"] == expected
