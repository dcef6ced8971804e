"""Every example manifest is a valid KEDA object, checked strictly against KEDA's own
CRDs (config/crd/bases of the pinned KEDA module, see tests/kedago.py), and its
triggers parse with our own metadata rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scaler.brokers.memory.client import MemoryAdapter
from scaler.brokers.rabbitmq.client import RabbitAdapter
from scaler.brokers.redis.client import RedisAdapter
from scaler.brokers.sqs.client import SqsAdapter
from scaler.registry import Triggers
from tests.kedago import crd_dir

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
# What the examples' secretKeyRefs would hold, for parsing their triggers.
SECRET_VALUES = {
    "RABBITMQ_MANAGEMENT_URL": "http://user:password@rabbitmq.data:15672/%2F",
    "RABBITMQ_URL": "amqp://user:password@rabbitmq.data:5672/%2F",
}


def _strict(schema: Any) -> Any:
    """Reject unknown fields, as `kubectl apply --validate=strict` does."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _schemas() -> dict[tuple[str, str], Any]:
    out = {}
    for path in crd_dir().glob("keda.sh_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            out[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return out


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}#{i}", doc)
        for path in EXAMPLES
        for i, doc in enumerate(yaml.safe_load_all(path.read_text()))
        if doc
    ]


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], Any]:
    found = _schemas()
    assert {kind for _, kind in found} >= {"ScaledJob", "ScaledObject", "TriggerAuthentication"}
    return found


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4
    kinds = {doc["kind"] for _, doc in _documents()}
    assert {"ScaledJob", "ScaledObject", "TriggerAuthentication",
            "ClusterTriggerAuthentication"} <= kinds  # fmt: skip


def test_tls_examples_give_keda_every_tls_parameter() -> None:
    """caCert, tlsClientCert and tlsClientKey (KEDA's external-scaler TLS parameters),
    from Secrets where KEDA looks: the TriggerAuthentication's own namespace, or the
    cluster-objects namespace for a ClusterTriggerAuthentication."""
    docs = [doc for name, doc in _documents() if name.startswith("mtls-")]
    for auth in (d for d in docs if d["kind"].endswith("TriggerAuthentication")):
        refs = auth["spec"]["secretTargetRef"]
        assert {r["parameter"] for r in refs} == {"caCert", "tlsClientCert", "tlsClientKey"}
        secret = {r["name"] for r in refs}.pop()
        issued = [
            d for d in docs if d["kind"] == "Certificate" and d["spec"]["secretName"] == secret
        ]
        assert len(issued) == 1, auth["metadata"]["name"]
        where = issued[0]["metadata"]["namespace"]
        if auth["kind"] == "TriggerAuthentication":
            assert where == auth["metadata"]["namespace"]
        else:
            assert where == "keda"  # KEDA_CLUSTER_OBJECT_NAMESPACE's default
        users = [
            d for d in docs if d["kind"] == "ScaledJob"
            and any(t.get("authenticationRef", {}).get("name") == auth["metadata"]["name"]
                    and t["authenticationRef"].get("kind", "TriggerAuthentication") == auth["kind"]
                    for t in d["spec"]["triggers"])
        ]  # fmt: skip
        assert users, f"no ScaledJob uses {auth['kind']} {auth['metadata']['name']}"
        if auth["kind"] == "TriggerAuthentication":
            assert all(u["metadata"]["namespace"] == where for u in users)


@pytest.mark.parametrize(("name", "doc"), _documents(), ids=[n for n, _ in _documents()])
def test_example_matches_keda_crd(name: str, doc: dict[str, Any], schemas: dict[Any, Any]) -> None:
    schema = schemas.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return  # not a KEDA object (e.g. a Secret next to it)
    jsonschema.validate(doc, schema)


def _scale_target(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The Deployment a ScaledObject example scales, from the same file."""
    file = name.split("#")[0]
    target = doc["spec"]["scaleTargetRef"]["name"]
    (found,) = [
        d for n, d in _documents()
        if n.split("#")[0] == file and d["kind"] == "Deployment" and d["metadata"]["name"] == target
    ]  # fmt: skip
    return found


def _containers(name: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Where KEDA resolves a trigger's ...FromEnv: the Job template of a ScaledJob, the
    scale target's Pod template of a ScaledObject."""
    if doc["kind"] == "ScaledObject":
        return list(_scale_target(name, doc)["spec"]["template"]["spec"]["containers"])
    return list(doc["spec"]["jobTargetRef"]["template"]["spec"]["containers"])


@pytest.mark.parametrize(("name", "doc"), _documents(), ids=[n for n, _ in _documents()])
def test_example_triggers_parse(name: str, doc: dict[str, Any]) -> None:
    adapters = {
        "redis": RedisAdapter(timeout=1),
        "sqs": SqsAdapter(timeout=1),
        "rabbitmq": RabbitAdapter(timeout=1),
        "memory": MemoryAdapter(),
    }
    triggers = Triggers(adapters)
    for trigger in doc.get("spec", {}).get("triggers", []):
        assert trigger["type"] == "external"
        metadata = dict(trigger["metadata"])
        # KEDA replaces ...FromEnv names by the container's values before calling us.
        env = {
            e["name"]: e.get("value", SECRET_VALUES.get(e["name"], "from-secret"))
            for c in _containers(name, doc)
            for e in c.get("env", [])
        }
        resolved = {k: env[v] if k.endswith("FromEnv") else v for k, v in metadata.items()}
        assert triggers.parse(resolved).target > 0


@pytest.mark.parametrize("version", ["1.25.0", "1.37.0"])
def test_scaledobject_examples_scale_a_valid_deployment(version: str) -> None:
    import kubernetes_validate

    found = [(n, d) for n, d in _documents() if d["kind"] == "ScaledObject"]
    assert found, "no ScaledObject example"
    for name, doc in found:
        target = _scale_target(name, doc)
        kubernetes_validate.validate(target, version, strict=True)
        assert target["metadata"]["namespace"] == doc["metadata"]["namespace"]


def test_strict_schema_rejects_a_typo(schemas: dict[Any, Any]) -> None:
    doc = next(doc for _, doc in _documents() if doc["kind"] == "ScaledJob")
    bad = copy.deepcopy(doc)
    bad["spec"]["pollingIntervall"] = 5
    with pytest.raises(jsonschema.ValidationError, match="pollingIntervall"):
        jsonschema.validate(bad, schemas[(bad["apiVersion"], bad["kind"])])


@pytest.mark.parametrize(("name", "doc"), _documents(), ids=[n for n, _ in _documents()])
@pytest.mark.parametrize("version", ["1.25.0", "1.37.0"])
def test_example_job_template_is_a_valid_job(name: str, doc: dict[str, Any], version: str) -> None:
    import kubernetes_validate

    if doc.get("kind") != "ScaledJob":
        return
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": doc["metadata"]["name"]},
        "spec": doc["spec"]["jobTargetRef"],
    }
    if "podFailurePolicy" in job["spec"] and version == "1.25.0":
        version = "1.31.0"  # where podFailurePolicy is GA (docs/worker.md says so)
    kubernetes_validate.validate(job, version, strict=True)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "activeDeadlineSeconds" in job["spec"]
    assert "backoffLimit" in job["spec"]
    assert "successfulJobsHistoryLimit" in doc["spec"]
