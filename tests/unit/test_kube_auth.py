"""The authenticationRef resolver's rules beyond KEDA's key order (which
tests/keda/test_live_parity.py checks against KEDA's own scalers): which trigger,
which objects, what is refused and how it is said."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.errors import AuthError, KubeNotReady, MetadataError, PolicyError
from scaler.kube import auth
from scaler.metadata import TriggerMetadata
from scaler.registry import KINDS
from tests.kubeobjects import FixedObjects

REDIS = {"scalerAddress": "scaler:6000", "scalerType": "redis", "listName": "jobs"}


def keys(metadata: dict[str, str]) -> type[TriggerMetadata] | None:
    """The scalerType's metadata class: its keys declare what a parameter fills."""
    kind = KINDS.get(metadata.get("scalerType", ""))
    return kind.metadata if kind else None


def resolve(objects: Any, namespace: str, name: str, metadata: dict[str, str]) -> Any:
    return auth.resolve(objects, namespace, name, metadata, keys(metadata))


def apply(metadata: dict[str, str], found: Any) -> tuple[dict[str, str], dict[str, str]]:
    return auth.apply(metadata, found, keys(metadata))


def resolved(objects: FixedObjects, metadata: dict[str, str], name: str = "job") -> dict[str, str]:
    found = resolve(objects, "team-a", name, metadata)
    assert found is not None
    merged, _ = apply(metadata, found)
    return merged


def test_a_trigger_without_authentication_ref_is_left_alone() -> None:
    objects = FixedObjects(docs=[{
        "kind": "ScaledJob", "metadata": {"namespace": "team-a", "name": "job"},
        "spec": {"triggers": [{"type": "external", "metadata": dict(REDIS)}]},
    }])  # fmt: skip
    assert resolve(objects, "team-a", "job", REDIS) is None
    assert resolve(objects, "team-b", "job", REDIS) is None  # not found: nothing to add


def test_the_matching_trigger_is_chosen_by_its_metadata() -> None:
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", {**REDIS, "address": "a:6379"}, {"password": "pa"})
    objects.add_trigger("team-a", "job", {**REDIS, "address": "b:6379"}, {"password": "pb"})
    assert resolved(objects, {**REDIS, "address": "b:6379"})["password"] == "pb"
    assert resolved(objects, {**REDIS, "address": "a:6379"})["password"] == "pa"


def test_fromenv_values_are_keda_s_resolved_ones_not_the_declared_names() -> None:
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", {**REDIS, "addressFromEnv": "ADDR"}, {"password": "p"})
    sent = {**REDIS, "addressFromEnv": "10.0.0.1:6379"}  # KEDA sends the variable's value
    assert resolved(objects, sent)["password"] == "p"


def test_an_edit_the_cache_has_not_seen_is_said_not_guessed() -> None:
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", {**REDIS, "listName": "old"}, {"password": "p"})
    with pytest.raises(AuthError, match="behind an edit"):
        resolve(objects, "team-a", "job", REDIS)


def test_two_identical_triggers_with_different_authentications_are_ambiguous() -> None:
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", dict(REDIS), {"password": "one"})
    objects.add_trigger("team-a", "job", dict(REDIS), {"password": "two"})
    with pytest.raises(AuthError, match="different authenticationRefs"):
        resolve(objects, "team-a", "job", REDIS)


def _with_spec(spec: dict[str, Any], kind: str = "TriggerAuthentication") -> FixedObjects:
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", dict(REDIS), {}, kind=kind, auth_name="ta")
    objects.docs[0]["spec"] = spec
    return objects


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"hashiCorpVault": {"address": "https://vault"}}, "hashiCorpVault"),
        ({"azureKeyVault": {"vaultUri": "https://kv"}}, "azureKeyVault"),
        ({"gcpSecretManager": {"secrets": [{"id": "x"}]}}, "gcpSecretManager"),
        ({"awsSecretManager": {"secrets": [{"name": "x"}]}}, "awsSecretManager"),
        ({"podIdentity": {"provider": "azure-workload"}}, "podIdentity azure-workload"),
        ({"podIdentity": {"provider": "gcp"}}, "podIdentity gcp"),
        ({"podIdentity": {"provider": "aws", "identityOwner": "workload"}}, "identityOwner"),
        (
            {"boundServiceAccountToken": [{"parameter": "t", "serviceAccountName": "s"}]},
            "boundServiceAccountToken",
        ),
    ],
)
def test_unsupported_providers_are_named_never_skipped(spec: dict[str, Any], named: str) -> None:
    with pytest.raises(AuthError, match=named) as caught:
        resolve(_with_spec(spec), "team-a", "job", REDIS)
    assert caught.value.code == "FAILED_PRECONDITION"


def test_missing_objects_and_keys_are_named() -> None:
    objects = _with_spec(
        {"secretTargetRef": [{"parameter": "password", "name": "gone", "key": "k"}]}
    )
    with pytest.raises(AuthError, match="Secret team-a/gone does not exist"):
        resolve(objects, "team-a", "job", REDIS)
    objects.secrets[("team-a", "gone")] = {"other": "x"}
    with pytest.raises(AuthError, match='has no key "k"'):
        resolve(objects, "team-a", "job", REDIS)
    objects.docs[0]["spec"] = {}
    objects.docs.pop(0)  # the TriggerAuthentication itself
    with pytest.raises(AuthError, match=r"TriggerAuthentication team-a/ta .* does not exist"):
        resolve(objects, "team-a", "job", REDIS)


def test_configmap_then_secret_then_env_order_and_env_from_the_job_container() -> None:
    objects = _with_spec({
        "env": [{"parameter": "username", "name": "REDIS_USER"}],
        "configMapTargetRef": [{"parameter": "password", "name": "cm", "key": "pw"}],
        "secretTargetRef": [{"parameter": "password", "name": "sec", "key": "pw"}],
    })  # fmt: skip
    objects.configmaps[("team-a", "cm")] = {"pw": "from-configmap"}
    objects.secrets[("team-a", "sec")] = {"pw": "from-secret"}
    objects.secrets[("team-a", "users")] = {"name": "from-env-secret"}
    job = objects.docs[1]
    job["spec"]["jobTargetRef"] = {"template": {"spec": {"containers": [{
        "name": "worker",
        "env": [{"name": "REDIS_USER", "valueFrom": {"secretKeyRef": {"name": "users", "key": "name"}}}],
    }]}}}  # fmt: skip
    found = resolve(objects, "team-a", "job", REDIS)
    assert found is not None
    # KEDA: env first, then configMapTargetRef, then secretTargetRef (a later one wins).
    assert dict(found.params) == {"username": "from-env-secret", "password": "from-secret"}
    assert "from-secret" not in repr(found)


def test_a_cluster_trigger_authentication_fixes_its_own_target() -> None:
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", {**REDIS, "address": "evil:6379"},
                        {"password": "p", "address": "redis.data:6379"},
                        kind="ClusterTriggerAuthentication", auth_name="shared")  # fmt: skip
    with pytest.raises(
        PolicyError, match='"address" may not be set with ClusterTriggerAuthentication shared'
    ):
        resolved(objects, {**REDIS, "address": "evil:6379"})
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", dict(REDIS), {"password": "p"},
                        kind="ClusterTriggerAuthentication", auth_name="shared")  # fmt: skip
    with pytest.raises(PolicyError, match="names no broker"):
        resolved(objects, dict(REDIS))
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", dict(REDIS), {"password": "p", "address": "redis.data:6379"},
                        kind="ClusterTriggerAuthentication", auth_name="shared")  # fmt: skip
    assert objects.secrets[("keda", "shared")]  # read from KEDA's cluster-objects namespace
    merged = resolved(objects, dict(REDIS))
    assert merged["address"] == "redis.data:6379"
    assert merged["password"] == "p"


def test_a_cluster_trigger_authentication_takes_no_target_from_the_workload() -> None:
    """Its password is the cluster's; an address from the tenant's own container env
    would let the tenant choose where it goes."""
    objects = _with_spec(
        {"env": [{"parameter": "address", "name": "REDIS_ADDRESS"}],
         "secretTargetRef": [{"parameter": "password", "name": "ta", "key": "password"}]},
        kind="ClusterTriggerAuthentication",
    )  # fmt: skip
    with pytest.raises(PolicyError, match='takes "address" from the workload'):
        resolve(objects, "team-a", "job", REDIS)


def test_credentials_ref_and_authentication_ref_together_are_refused() -> None:
    objects = FixedObjects()
    metadata = {**REDIS, "credentialsRef": "set"}
    objects.add_trigger("team-a", "job", metadata, {"password": "p"})
    with pytest.raises(MetadataError, match="use one"):
        resolved(objects, metadata)


def test_broker_tls_parameters_come_only_from_the_trigger_authentication() -> None:
    """KEDA reads tls, ca, cert, key and keyPassword with order=authParams: a trigger
    that sets them in its metadata sets nothing."""
    metadata = {**REDIS, "ca": "FORGED", "tls": "enable"}
    objects = FixedObjects()
    objects.add_trigger("team-a", "job", metadata, {"tls": "enable", "ca": "PEM", "password": "p"})
    found = resolve(objects, "team-a", "job", metadata)
    assert found is not None
    merged, only = apply(metadata, found)
    assert only == {"tls": "enable", "ca": "PEM"}
    assert merged["password"] == "p"


def test_aws_pod_identity_uses_the_scalers_own_identity_with_the_role() -> None:
    metadata = {"scalerAddress": "s:6000", "scalerType": "aws-sqs-queue", "queueURL": "q",
                "awsRegion": "eu-west-1", "awsAccessKeyIDFromEnv": "AKID"}  # fmt: skip
    objects = _with_spec({"podIdentity": {"provider": "aws", "roleArn": "arn:aws:iam::1:role/r"}})
    objects.docs[1]["spec"]["triggers"][0]["metadata"] = dict(metadata)
    merged = resolved(objects, metadata)
    assert merged["awsRoleArn"] == "arn:aws:iam::1:role/r"
    assert "awsAccessKeyIDFromEnv" not in merged


def test_a_cache_still_loading_is_unavailable_not_a_guess() -> None:
    class Loading(FixedObjects):
        def data(self, kind: str, namespace: str, name: str) -> Any:
            raise KubeNotReady("loading")

    objects = Loading()
    objects.add_trigger("team-a", "job", dict(REDIS), {"password": "p"})
    with pytest.raises(KubeNotReady):
        resolve(objects, "team-a", "job", REDIS)
