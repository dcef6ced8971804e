"""The one environment walk against KEDA's own: ``resolver.ResolveContainerEnv``.

``scaler.keda.env.resolve`` (used by ``explain`` on a manifest, ``explain
--from-cluster`` and ``serve --kubernetes``) and KEDA v2.21.0's function
(``tests/keda/cmd/envwalk``, over controller-runtime's fake client holding the same
Secrets and ConfigMaps) resolve the same generated Pod specs. Every case must agree:
the same variables with the same values, or both an error.

The generator draws from a few names, so duplicates, references to earlier, later
and unknown names, and env shadowing envFrom happen often: ``env`` values and
``$(VAR)``/``$$`` references; ``valueFrom`` Secret and ConfigMap keys, present or
missing, optional or not; ``fieldRef``; ``envFrom`` ConfigMaps and Secrets with and
without a prefix, optional or not; several containers and ``envSourceContainerName``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections import Counter
from typing import Any

import pytest

from scaler.keda.env import EnvError, choose_container, resolve
from tests.kedago import tools_dir

pytestmark = [pytest.mark.keda, pytest.mark.usefixtures("keda_tools")]

CASES = int(os.environ.get("KQS_ENV_CASES", "3000"))
SEED = int(os.environ.get("KQS_PARITY_SEED", "20261202"))
NAMES = ["A", "B", "C", "P_A", "P_B", "HOST", "X"]
OBJECTS = ["one", "one", "two", "two", "gone"]  # "gone" never exists
KEYS = ["A", "B", "k", "HOST", "missing"]


def _text(rng: random.Random) -> str:
    parts = ["x", "", "$", "$$", "$(", ")", "(", f"$({rng.choice(NAMES)})", "$(unclosed",
             "$$(A)", "ab", "é", " "]  # fmt: skip
    return "".join(rng.choice(parts) for _ in range(rng.randint(0, 5)))


def _optional(rng: random.Random) -> dict[str, Any]:
    return rng.choice([{}, {"optional": True}, {"optional": True}, {"optional": False}])


def _env_var(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(NAMES)
    kind = rng.choice(["value", "value", "secret", "configmap", "field", "empty", "blank-from"])
    if kind == "value":
        return {"name": name, "value": _text(rng)}
    if kind == "secret":
        ref = {"name": rng.choice(OBJECTS), "key": rng.choice(KEYS), **_optional(rng)}
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}
    if kind == "configmap":
        ref = {"name": rng.choice(OBJECTS), "key": rng.choice(KEYS), **_optional(rng)}
        return {"name": name, "valueFrom": {"configMapKeyRef": ref}}
    if kind == "field":
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    if kind == "blank-from":
        return {"name": name, "value": "", "valueFrom": {"secretKeyRef": {
            "name": rng.choice(OBJECTS), "key": rng.choice(KEYS)}}}  # fmt: skip
    return {"name": name}


def _env_from(rng: random.Random) -> dict[str, Any]:
    source: dict[str, Any] = {}
    if rng.random() < 0.5:
        source["prefix"] = rng.choice(["P_", "", "X"])
    which = rng.choice(["configMapRef", "secretRef", "both"])
    for field in ("configMapRef", "secretRef") if which == "both" else (which,):
        source[field] = {"name": rng.choice(OBJECTS), **_optional(rng)}
    return source


def _container(rng: random.Random, name: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": "busybox"}
    if rng.random() < 0.6:
        container["envFrom"] = [_env_from(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.9:
        container["env"] = [_env_var(rng) for _ in range(rng.randint(1, 6))]
    return container


def _data(rng: random.Random) -> dict[str, str]:
    return {k: _text(rng) or k.lower() for k in rng.sample(KEYS[:4], rng.randint(0, 4))}


def generate(rng: random.Random, ident: int) -> dict[str, Any]:
    containers = [_container(rng, f"c{i}") for i in range(rng.randint(1, 3))]
    existing = [o for o in ("one", "two") if rng.random() < 0.9]
    return {
        "id": str(ident),
        "pod": {"containers": containers},
        "containerName": rng.choice(["", "", "", "c0", "c1", "c2", "absent"]),
        "secrets": {o: _data(rng) for o in existing if rng.random() < 0.9},
        "configMaps": {o: _data(rng) for o in existing if rng.random() < 0.9},
    }


def ours(case: dict[str, Any]) -> tuple[dict[str, str] | None, bool]:
    def lookup(kind: str, name: str) -> dict[str, str] | None:
        return (case["secrets"] if kind == "Secret" else case["configMaps"]).get(name)

    try:
        container = choose_container(case["pod"]["containers"], case["containerName"])
        return resolve(container, lookup).values, False
    except EnvError:
        return None, True


def test_the_env_walk_is_kedas() -> None:
    rng = random.Random(SEED)
    cases = [generate(rng, i) for i in range(CASES)]
    done = subprocess.run(
        [str(tools_dir() / "envwalk")],
        input="".join(json.dumps(c) + "\n" for c in cases),
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(cases)
    seen: Counter[str] = Counter()
    differences = []
    for case, answer in zip(cases, answers, strict=True):
        env, failed = ours(case)
        keda_failed = bool(answer.get("error"))
        seen["errors" if keda_failed else "resolved"] += 1
        seen["variables"] += len(answer.get("env") or {})
        if failed != keda_failed or (not failed and env != (answer.get("env") or {})):
            differences.append((case, answer, env))
    print(f"\nenv walk: {len(cases)} cases (seed {SEED}), {dict(seen)}, "
          f"{len(differences)} differences")  # fmt: skip
    assert seen["errors"] > CASES // 20  # both outcomes are exercised
    assert seen["resolved"] > CASES // 3
    assert not differences, json.dumps(differences[:3], indent=1)
