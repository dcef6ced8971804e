"""`keda-queue-scaler explain` end to end: the real CLI, a real server, a real Redis,
and the example manifest users start from."""

from __future__ import annotations

import json
from pathlib import Path

from scaler.adapters.memory import MemoryAdapter
from tests.brokers import RedisProcess
from tests.conftest import ServerFactory, run_cli

EXAMPLES = Path(__file__).parents[2] / "examples"


async def cli(*args: str) -> tuple[int, str, str]:
    return await run_cli("explain", *args)


async def test_explain_the_redis_example(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    redis_db.client().rpush("jobs", *range(12))
    async with start_server() as s:
        code, out, err = await cli(
            str(EXAMPLES / "redis-list-scaledjob.yaml"), "--address", s.address,
            "--env", f"REDIS_ADDRESS={redis_db.address}", "--env", "REDIS_PASSWORD=unused",
            "--running", "4", "--pending", "1", "--output", "json",
        )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["scaledJob"] == {"name": "redis-list-worker", "namespace": "default"}
    trigger = report["triggers"][0]
    assert (trigger["metricName"], trigger["value"], trigger["target"], trigger["active"]) == (
        "redis-jobs",
        12,
        1,
        True,
    )
    assert report["strategy"] == "accurate"
    # maxScale 12; accurate: 12 + 4 - 1 <= 50, so 12 - 1 pending = 11; default: 12 - 4
    assert report["byStrategy"] == {"default": 8, "custom": 8, "accurate": 11, "eager": 12}
    assert report["jobsToCreate"] == 11


async def test_text_report_marks_the_manifests_strategy(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    memory = MemoryAdapter()
    memory.put("jobs", 5)
    async with start_server(adapters={"memory": memory}) as s:
        manifest = tmp_path / "sj.yaml"
        manifest.write_text(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: w, namespace: n}\n"
            "spec:\n  maxReplicaCount: 3\n  scalingStrategy: {strategy: eager}\n"
            "  jobTargetRef: {template: {spec: {containers: [{name: c, image: i}]}}}\n"
            "  triggers:\n  - type: external\n    metadata:\n"
            f"      scalerAddress: '{s.address}'\n      scalerType: memory\n      queueName: jobs\n"
            "      queueLength: '2'\n"
        )
        code, out, err = await cli(str(manifest))
    assert code == 0, err
    assert "metric      s0-memory-jobs" in out
    assert "value       5  (target 2 per Job: 2.5 Jobs wanted)" in out
    assert "> eager        3   <- this ScaledJob's scalingStrategy" in out  # ceil(2.5), capped at 3
    assert "    default      3" in out


async def test_unreachable_scaler_and_bad_metadata_are_reported(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    async with start_server(adapters={"memory": MemoryAdapter()}) as s:
        manifest = tmp_path / "sj.yaml"
        manifest.write_text(
            "kind: ScaledJob\nspec:\n  triggers:\n  - type: external\n    metadata:\n"
            f"      scalerAddress: '{s.address}'\n      scalerType: memory\n      queueLength: x\n"
        )
        code, out, _ = await cli(str(manifest), "--output", "json")
    assert code == 1  # every trigger failed
    report = json.loads(out)
    assert report["triggers"][0]["error"].startswith("INVALID_ARGUMENT")
    assert report["jobsToCreate"] == 0


async def test_bad_manifest_exits_2_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "deploy.yaml"
    bad.write_text("kind: Deployment\nmetadata: {name: x}\n")
    code, _, err = await cli(str(bad))
    assert code == 2
    assert "holds no ScaledJob (kinds found: Deployment)" in err
    code, _, err = await cli(str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read" in err
    code, _, err = await cli(str(bad), "--running", "1", "--pending", "2")
    assert code == 2
