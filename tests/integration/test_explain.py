"""`keda-queue-scaler explain` end to end: the real CLI, a real server, a real Redis,
and the example manifest users start from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scaler.brokers.memory.client import MemoryAdapter
from tests.brokers import RedisProcess
from tests.conftest import REDIS_PASSWORD, ServerFactory, run_cli

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
    assert "holds no ScaledJob or ScaledObject (kinds found: Deployment)" in err
    code, _, err = await cli(str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read" in err
    code, _, err = await cli(str(bad), "--running", "1", "--pending", "2")
    assert code == 2


async def test_address_must_be_host_port(tmp_path: Path) -> None:
    for bad in ("http://127.0.0.1:6000", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000"):
        code, _, err = await cli(str(EXAMPLES / "redis-list-scaledjob.yaml"), "--address", bad)
        assert code == 2, bad
        assert "--address" in err
        assert "host:port" in err


async def test_a_secret_backed_variable_not_supplied_is_named(
    start_server: ServerFactory, redis_db: RedisProcess, tmp_path: Path
) -> None:
    env_file = tmp_path / "env"
    env_file.write_text(f"# address only\nREDIS_ADDRESS={redis_db.address}\n")
    async with start_server() as s:
        code, out, err = await cli(
            str(EXAMPLES / "redis-list-scaledjob.yaml"), "--address", s.address,
            "--env-file", str(env_file), "--output", "json",
        )  # fmt: skip
    assert code == 0, err
    assert "passwordFromEnv names variable REDIS_PASSWORD" in err
    assert "Secret redis-auth key password" in err
    assert "--env REDIS_PASSWORD=" in err
    report = json.loads(out)
    assert any("REDIS_PASSWORD" in note for note in report["notes"])
    assert report["triggers"][0]["value"] == 0  # the unprotected test Redis answers


async def test_a_failing_metric_spec_is_reported_as_silent_in_a_cluster(tmp_path: Path) -> None:
    from tests.brokers import free_port

    manifest = tmp_path / "sj.yaml"
    manifest.write_text(
        "kind: ScaledJob\nspec:\n  triggers:\n  - type: external\n    metadata:\n"
        f"      scalerAddress: '127.0.0.1:{free_port()}'\n      scalerType: memory\n"
        "      queueName: jobs\n"
    )
    code, out, _ = await cli(str(manifest), "--timeout", "2")
    assert code == 1
    assert "UNAVAILABLE" in out
    assert "KEDA drops this trigger for the poll silently" in out


async def test_keda_retries_a_failed_call_once_and_so_does_explain(tmp_path: Path) -> None:
    """A scaler whose first GetMetrics fails: KEDA rebuilds the scaler and asks again."""
    import grpc

    from scaler.proto import externalscaler_pb2 as pb
    from scaler.proto import externalscaler_pb2_grpc as pb_grpc

    class Flaky(pb_grpc.ExternalScalerServicer):
        calls = 0

        async def GetMetricSpec(self, request: Any, context: Any) -> Any:
            return pb.GetMetricSpecResponse(
                metricSpecs=[pb.MetricSpec(metricName="q", targetSize=2, targetSizeFloat=2)]
            )

        async def GetMetrics(self, request: Any, context: Any) -> Any:
            Flaky.calls += 1
            if Flaky.calls == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "first call fails")
            return pb.GetMetricsResponse(
                metricValues=[pb.MetricValue(metricName="q", metricValue=3, metricValueFloat=3),
                              pb.MetricValue(metricName="q", metricValue=4, metricValueFloat=4.5)]
            )  # fmt: skip

        async def IsActive(self, request: Any, context: Any) -> Any:
            return pb.IsActiveResponse(result=True)

    server = grpc.aio.server()
    pb_grpc.add_ExternalScalerServicer_to_server(Flaky(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        manifest = tmp_path / "sj.yaml"
        manifest.write_text(
            "kind: ScaledJob\nspec:\n  triggers:\n  - type: external\n    metadata:\n"
            f"      scalerAddress: '127.0.0.1:{port}'\n"
        )
        code, out, err = await cli(str(manifest), "--output", "json")
    finally:
        await server.stop(None)
    assert code == 0, err
    report = json.loads(out)
    assert Flaky.calls == 2
    assert report["triggers"][0]["value"] == 7.5  # every value returned is summed
    assert report["jobsToCreate"] == 4  # ceil(7.5 / 2)
    assert any("retry succeeded" in note for note in report["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--watch", "x.yaml"], "--watch follows a ScaledJob in a cluster"),
        (["x.yaml", "--from-cluster", "ns/name"], "not both"),
        (["--from-cluster", "ns/name", "--running", "3"], "read from the cluster"),
        (["--from-cluster", "ns/name", "--replicas", "3"], "read from the cluster"),
        (["x.yaml", "--replicas", "-1"], "--replicas must be 0 or more"),
        (["--from-cluster", "just-a-name"], "expected NAMESPACE/NAME"),
        ([], "give a manifest file or --from-cluster"),
    ],
)
async def test_from_cluster_arguments_are_checked(args: list[str], message: str) -> None:
    code, _, err = await cli(*args)
    assert code == 2
    assert message in err


async def test_from_cluster_without_a_kubeconfig_says_so(tmp_path: Path) -> None:
    code, _, err = await run_cli(
        "explain", "--from-cluster", "ns/name", "--kubeconfig", str(tmp_path / "missing")
    )
    assert code == 2
    assert "no usable kubeconfig" in err


async def test_explain_shows_the_age_beside_the_length(
    start_server: ServerFactory, redis_db: RedisProcess, tmp_path: Path
) -> None:
    """An age trigger is shown with its queue's length, a length trigger with its oldest
    item's age when the items carry times (docs/age.md); the server's clock is fixed."""
    redis_db.client().lpush("jobs", *(json.dumps({"at": 1_700_000_000 + i}) for i in range(3)))
    manifest = tmp_path / "sj.yaml"
    manifest.write_text(
        "kind: ScaledJob\nmetadata: {name: aged, namespace: team-a}\nspec:\n  triggers:\n"
        "  - type: external\n    metadata:\n      scalerAddress: x:1\n      scalerType: redis\n"
        f"      address: {redis_db.address}\n      listName: jobs\n      measure: age\n"
        "      targetAge: '30'\n      ageField: at\n"
    )
    async with start_server(wall_clock=lambda: 1_700_000_090.0) as s:
        code, out, err = await cli(str(manifest), "--address", s.address, "--output", "json")
        assert code == 0, err
        trigger = json.loads(out)["triggers"][0]
        assert (trigger["metricName"], trigger["value"], trigger["length"]) == (
            "redis-jobs-age",
            90,
            3,
        )
        assert trigger["target"] == 30
        code, out, err = await cli(str(manifest), "--address", s.address)
        assert code == 0, err
        assert "trigger 0 measures age (seconds); its queue holds 3 ready items" in out


async def test_a_typo_in_a_key_is_named_with_the_key_it_resembles(
    start_server: ServerFactory, redis_db: RedisProcess, tmp_path: Path
) -> None:
    """``listLenght`` is ignored, by KEDA as by the scaler, so the default target of 5
    stands: 7 items make 2 Jobs, not 7. explain still predicts what KEDA will do, and
    says which key was ignored and which one was probably meant."""
    redis_db.client().rpush("jobs", *range(7))
    manifest = tmp_path / "sj.yaml"
    manifest.write_text(
        "kind: ScaledJob\nmetadata: {name: typo, namespace: team-a}\nspec:\n  triggers:\n"
        "  - type: external\n    metadata:\n      scalerAddress: x:1\n      scalerType: redis\n"
        f"      address: {redis_db.address}\n      listName: jobs\n      listLenght: '1'\n"
        "      databaseIndex: '0'\n      Password: nope\n"
    )
    async with start_server() as s:
        code, out, err = await cli(str(manifest), "--address", s.address, "--output", "json")
        assert code == 0, err
        report = json.loads(out)
        assert report["jobsToCreate"] == 2
        trigger = report["triggers"][0]
        assert trigger["target"] == 5
        assert trigger["unknownKeys"] == [
            {"key": "listLenght", "closest": "listLength"},
            {"key": "Password", "closest": "password"},
        ]
        code, out, err = await cli(str(manifest), "--address", s.address)
    assert code == 0, err
    assert (
        'trigger 0: "listLenght" is not a key of scalerType "redis" (did you mean '
        '"listLength"?): KEDA and the scaler ignore it'
    ) in out


async def test_the_migrated_example_takes_its_password_from_its_own_trigger_authentication(
    start_server: ServerFactory, redis_password_server: RedisProcess, tmp_path: Path
) -> None:
    """The example that moves a trigger from type: redis carries its Secret and
    TriggerAuthentication in the same file: explain resolves them as the scaler's
    --kubernetes resolves them from the API server, so the read is authenticated; and
    a file without the Secret says which object is missing."""
    import yaml

    r = redis_password_server.client()
    r.delete("migrated")
    r.rpush("migrated", *range(4))
    secret, auth, job = yaml.safe_load_all(
        (EXAMPLES / "redis-triggerauthentication-scaledjob.yaml").read_text()
    )
    secret["stringData"]["password"] = REDIS_PASSWORD
    job["spec"]["triggers"][0]["metadata"].update(
        address=redis_password_server.address, listName="migrated"
    )
    manifest = tmp_path / "migrated.yaml"
    manifest.write_text(yaml.safe_dump_all([secret, auth, job]))
    async with start_server() as s:
        code, out, err = await cli(str(manifest), "--address", s.address, "--output", "json")
        assert code == 0, err
        report = json.loads(out)
        trigger = report["triggers"][0]
        assert (trigger["value"], trigger.get("error")) == (4, None)
        assert any("parameters password from TriggerAuthentication default/redis-auth" in n
                   for n in report["notes"])  # fmt: skip
        assert REDIS_PASSWORD not in out  # the note names parameters, never their values

        manifest.write_text(yaml.safe_dump_all([auth, job]))  # the Secret left out
        code, out, err = await cli(str(manifest), "--address", s.address)
    assert "Secret default/redis-auth does not exist" in out
    assert "UNAUTHENTICATED" in out or "NOAUTH" in out


async def test_explain_the_scaledobject_example(
    start_server: ServerFactory, redis_db: RedisProcess
) -> None:
    """The ScaledObject example with 7 items: its password from --env (the Deployment's
    Secret), the Deployment's replicas from the file (0) or --replicas. The real HPA's
    and KEDA's answers for these steps are checked in tests/e2e/test_scaledobjects.py."""
    redis_db.client().rpush("jobs", *range(7))
    example = str(EXAMPLES / "redis-list-scaledobject.yaml")
    env = ("--env", f"REDIS_ADDRESS={redis_db.address}", "--env", "REDIS_PASSWORD=")
    reports = {}
    async with start_server() as s:
        for replicas in (None, 5):
            more = ("--replicas", str(replicas)) if replicas is not None else ()
            code, out, err = await cli(example, "--address", s.address, *env, *more,
                                       "--output", "json")  # fmt: skip
            assert code == 0, err
            reports[replicas] = json.loads(out)
        code, text, err = await cli(example, "--address", s.address, *env)
    assert code == 0, err
    at_zero, at_five = reports[None], reports[5]
    assert at_zero["scaledObject"] == {"name": "list-consumer", "namespace": "default"}
    assert at_zero["scaleTarget"] == "Deployment/list-consumer"
    (metric,) = at_zero["metrics"]
    assert (metric["metricName"], metric["metricType"], metric["value"], metric["target"],
            metric["active"]) == ("s0-redis-jobs", "AverageValue", 7, 3, True)  # fmt: skip
    # spec.replicas 0 in the file: KEDA activates to 1, then the HPA wants ceil(7 / 3)
    assert (at_zero["replicas"], at_zero["kedaReplicas"], at_zero["hpaReplicas"],
            at_zero["settlesAt"]) == (0, 1, 3, 3)  # fmt: skip
    assert (at_zero["hpaMinReplicas"], at_zero["hpaMaxReplicas"]) == (1, 5)
    # from 5: 7 / (3 x 5) is outside the tolerance, so ceil(7 / 3) = 3; KEDA does nothing
    assert (at_five["kedaReplicas"], at_five["hpaReplicas"], at_five["nextReplicas"]) == (
        None, 3, 3)  # fmt: skip
    assert "KEDA this poll: activates the target: 0 -> 1" in text
    assert "HPA next sync: 3 replicas" in text


async def test_explain_scaledobject_without_its_target_needs_replicas(
    start_server: ServerFactory, redis_db: RedisProcess, tmp_path: Path
) -> None:
    import yaml

    (_, scaled) = yaml.safe_load_all((EXAMPLES / "redis-list-scaledobject.yaml").read_text())
    alone = tmp_path / "so.yaml"
    alone.write_text(yaml.safe_dump(scaled))
    async with start_server() as s:
        code, _, err = await cli(str(alone), "--address", s.address)
        assert code == 2
        assert "Deployment/list-consumer is not in the file; give --replicas N" in err
        code, out, err = await cli(str(alone), "--address", s.address, "--replicas", "2",
                                   "--output", "json")  # fmt: skip
    # ...FromEnv cannot be resolved without the Deployment: warned, and the call fails
    assert "addressFromEnv names variable REDIS_ADDRESS" in err
    assert code == 1
    report = json.loads(out)
    assert report["metrics"][0]["error"]
    assert report["keda"].startswith("nothing: no trigger active and one fails")


async def test_explain_refuses_what_keda_refuses(tmp_path: Path) -> None:
    import yaml

    deployment, scaled = yaml.safe_load_all((EXAMPLES / "redis-list-scaledobject.yaml").read_text())
    # minReplicaCount 0, given, counts as the HPA's 1 (KEDA's own check): idle 0 passes,
    # idle 1 does not
    scaled["spec"]["idleReplicaCount"] = 1
    bad = tmp_path / "so.yaml"
    bad.write_text(yaml.safe_dump_all([deployment, scaled]))
    code, _, err = await cli(str(bad))
    assert code == 2
    assert "IdleReplicaCount=1 must be less than MinReplicaCount=1" in err
