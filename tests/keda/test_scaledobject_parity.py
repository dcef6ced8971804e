"""Differential test: our reading of a ScaledObject's replica counts
(scaler.keda.scaledobject.from_manifest) against KEDA's own methods.

Every combination of minReplicaCount, maxReplicaCount and idleReplicaCount (each
unset or a small count) goes to ``sobounds`` (tests/keda/cmd/sobounds), which answers
with KEDA v2.21.0's CheckReplicaCountBoundsAreValid, GetHPAMinReplicas and
GetHPAMaxReplicas: we must refuse exactly what KEDA refuses, with KEDA's reason, and
give the HPA the same bounds.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from typing import Any

import pytest

from scaler.keda.manifest import ManifestError
from scaler.keda.scaledobject import from_manifest
from tests.kedago import tools_dir

pytestmark = [pytest.mark.keda, pytest.mark.usefixtures("keda_tools")]
COUNTS = (None, 0, 1, 2, 3, 7)


def _scaled_object(low: int | None, high: int | None, idle: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"scaleTargetRef": {"name": "worker"},
                            "triggers": [{"type": "external", "metadata": {"scalerType": "redis"}}]}  # fmt: skip
    for key, value in (("minReplicaCount", low), ("maxReplicaCount", high),
                       ("idleReplicaCount", idle)):  # fmt: skip
        if value is not None:
            spec[key] = value
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "so", "namespace": "team"}, "spec": spec}  # fmt: skip


def test_replica_bounds_match_keda() -> None:
    cases = [_scaled_object(*c) for c in itertools.product(COUNTS, repeat=3)]
    done = subprocess.run(
        [str(tools_dir() / "sobounds")], input="".join(json.dumps(c) + "\n" for c in cases),
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(cases) == len(COUNTS) ** 3
    refused = 0
    for case, keda in zip(cases, answers, strict=True):
        refusal = ""
        try:
            ours = from_manifest(case)
        except ManifestError as exc:
            refusal = str(exc)
        if refusal or keda["error"]:
            assert refusal, f"{case['spec']}: KEDA refuses ({keda['error']}), we accept"
            assert keda["error"], f"{case['spec']}: we refuse ({refusal}), KEDA accepts"
            assert keda["error"] in refusal, (case["spec"], keda["error"], refusal)
            refused += 1
            continue
        assert (ours.spec.hpa_min, ours.spec.hpa_max) == (keda["hpaMin"], keda["hpaMax"])
    assert 0 < refused < len(cases)  # both outcomes were compared
    print(f"\n{len(cases)} ScaledObjects compared with KEDA: {refused} refused by both")
