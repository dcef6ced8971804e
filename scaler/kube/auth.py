"""A trigger's ``authenticationRef``, resolved as KEDA v2.21.0 resolves it for its
built-in scalers (pkg/scaling/resolver/scale_resolvers.go), then mapped onto the
trigger's metadata in the order each key of the built-in scaler reads it.

KEDA forwards none of a TriggerAuthentication's parameters to an external scaler
(keda#2571): this module closes that gap. It reads only objects handed to it
(:class:`Objects`), so it never waits on the API server.

The steps, for a ScaledObjectRef (namespace, name, metadata):

1. the ScaledJob (or ScaledObject) of that name in that namespace, and its external
   trigger whose metadata is the forwarded map (``...FromEnv`` keys aside: KEDA
   replaces their values);
2. its ``authenticationRef``: a TriggerAuthentication of the same namespace, or a
   ClusterTriggerAuthentication whose Secrets and ConfigMaps live in KEDA's
   cluster-objects namespace;
3. parameters in KEDA's order: ``env`` (from the Job template's container), then
   ``configMapTargetRef``, then ``secretTargetRef``, a later one replacing an earlier
   one; ``podIdentity`` ``aws`` adds ``awsRoleArn``;
4. each parameter onto the metadata key the built-in trigger reads, in that key's
   order (``triggerMetadata;authParams;resolvedEnv`` and so on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from scaler.credentials import REF_KEY, check_transport
from scaler.documents import Doc, mapping, mappings
from scaler.errors import AuthError, MetadataError, PolicyError
from scaler.guard import quoted
from scaler.keda.env import EnvError, Unknown, choose_container
from scaler.keda.env import resolve as resolve_env
from scaler.keda.manifest import job_containers
from scaler.metadata import TriggerMetadata

CLUSTER_KIND = "ClusterTriggerAuthentication"
NAMESPACED_KIND = "TriggerAuthentication"
EXTERNAL_TYPES = ("external", "external-push")

#: TriggerAuthentication providers this scaler cannot resolve (each is named in a
#: FAILED_PRECONDITION, never skipped silently).
UNSUPPORTED_PROVIDERS = (
    "hashiCorpVault",
    "azureKeyVault",
    "gcpSecretManager",
    "awsSecretManager",
    "boundServiceAccountToken",
    "oauth2",
    "azureServicePrincipal",
    "filePath",
)

_AWS_KEYS = (
    "awsAccessKeyID",
    "awsAccessKeyId",
    "awsAccessKeyIDFromEnv",
    "awsAccessKeyIdFromEnv",
    "awsSecretAccessKey",
    "awsSecretAccessKeyFromEnv",
    "awsSessionToken",
    "awsSessionTokenFromEnv",
)


class Objects(Protocol):
    """What the resolver reads: objects a watch has already cached."""

    cluster_namespace: str

    def scaled(self, namespace: str, name: str) -> Sequence[Doc]:
        """The ScaledJob and the ScaledObject of that name (those that exist).
        KubeNotReady while the first listing is not done."""
        ...

    def trigger_authentication(self, namespace: str, name: str) -> Doc | None: ...

    def cluster_trigger_authentication(self, name: str) -> Doc | None: ...

    def data(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        """A Secret's (decoded) or ConfigMap's data; None when it does not exist.
        KubeNotReady while it is being loaded, AuthError when RBAC refuses it."""
        ...


@dataclass(frozen=True)
class ResolvedAuth:
    """A trigger's TriggerAuthentication parameters. ``source`` names the object (for
    messages); ``cluster`` is True for a ClusterTriggerAuthentication."""

    params: Mapping[str, str]
    source: str
    cluster: bool
    aws_pod_identity: bool = False

    def __repr__(self) -> str:  # parameters are credentials: never printed
        return f"ResolvedAuth(source={self.source!r}, params={sorted(self.params)})"


def matches(trigger: Doc, forwarded: Mapping[str, str]) -> bool:
    """Whether KEDA built ``forwarded`` from this trigger: an external trigger with the
    same keys and, except ``...FromEnv`` keys (whose values KEDA resolves, or drops
    when empty), the same values."""
    if trigger.get("type") not in EXTERNAL_TYPES:
        return False
    declared = {str(k): str(v) for k, v in mapping(trigger.get("metadata")).items()}
    plain = {k: v for k, v in declared.items() if not k.endswith("FromEnv")}
    sent = {k: v for k, v in forwarded.items() if not k.endswith("FromEnv")}
    if plain != sent:
        return False
    return all(k in declared for k in forwarded)


def find_ref(docs: Sequence[Doc], forwarded: Mapping[str, str], who: str) -> tuple[Doc, Doc] | None:
    """(the object, its trigger's authenticationRef) for the trigger KEDA sent, or
    None when it has none. AuthError when two matching triggers name different
    authentications, or when the object's triggers all differ from what KEDA sent
    while one of them has an authenticationRef (the cache is behind an edit)."""
    found: list[tuple[Doc, Doc]] = []
    any_ref = False
    for doc in docs:
        for trigger in mappings(mapping(doc.get("spec")).get("triggers")):
            ref = trigger.get("authenticationRef")
            any_ref = any_ref or bool(ref)
            if matches(trigger, forwarded):
                found.append((doc, dict(ref) if isinstance(ref, Mapping) else {}))
    if not found:
        if any_ref:
            raise AuthError(
                f"no trigger of {who} matches the metadata KEDA sent, and one of its triggers "
                "has an authenticationRef: the scaler's view of it may be behind an edit "
                "(it follows a watch; KEDA retries on its next poll)"
            )
        return None
    refs = {(str(r.get("kind") or NAMESPACED_KIND), str(r.get("name") or "")) for _, r in found}
    if len(refs) > 1:
        raise AuthError(
            f"{who} has several external triggers with this metadata but different "
            "authenticationRefs: make their metadata differ (e.g. a different key order "
            "does not; a different listName does)"
        )
    doc, ref = found[0]
    return (doc, ref) if ref.get("name") else None


def _container(doc: Doc, name: str) -> Doc:
    try:
        return choose_container(job_containers(mapping(doc.get("spec"))), name)
    except EnvError as exc:
        raise AuthError(f"authenticationRef env: {exc}") from None


def container_env(
    container: Doc,
    namespace: str,
    data: Callable[[str, str, str], Mapping[str, str] | Unknown | None],
) -> dict[str, str]:
    """A container's environment as KEDA's ``ResolveContainerEnv`` builds it
    (:mod:`scaler.keda.env`, the one walk), from ``data(kind, namespace, name)``. An
    object that does not exist and is not optional is FAILED_PRECONDITION naming it
    (KEDA logs it and leaves the parameter empty: a listed difference)."""
    try:
        return resolve_env(container, lambda kind, name: data(kind, namespace, name)).values
    except EnvError as exc:
        raise AuthError(f"authenticationRef env: {exc}") from None


def _bound(keys: type[TriggerMetadata] | None) -> tuple[str, ...]:
    """The keys credentials a trigger does not own fix for it: its targets and identity."""
    return keys.names_with_role("target", "port", "identity") if keys else ()


def resolve(
    objects: Objects,
    namespace: str,
    name: str,
    forwarded: Mapping[str, str],
    keys: type[TriggerMetadata] | None = None,
) -> ResolvedAuth | None:
    """The TriggerAuthentication parameters of the trigger KEDA sent, or None when the
    trigger has no authenticationRef (or its object is not in a watched namespace).
    ``keys`` is the trigger's metadata class (None: a scalerType its parse refuses)."""
    who = f"ScaledJob/ScaledObject {namespace}/{name}"
    found = find_ref(objects.scaled(namespace, name), forwarded, who)
    if found is None:
        return None
    doc, ref = found
    kind, ref_name = str(ref.get("kind") or NAMESPACED_KIND), str(ref["name"])
    if kind == NAMESPACED_KIND:
        auth = objects.trigger_authentication(namespace, ref_name)
        where, source = namespace, f"TriggerAuthentication {namespace}/{ref_name}"
    elif kind == CLUSTER_KIND:
        auth = objects.cluster_trigger_authentication(ref_name)
        where, source = objects.cluster_namespace, f"ClusterTriggerAuthentication {ref_name}"
    else:
        raise AuthError(
            f'authenticationRef kind "{quoted(kind)}" is not TriggerAuthentication or '
            "ClusterTriggerAuthentication"
        )
    if auth is None:
        raise AuthError(f"{source} (the trigger's authenticationRef) does not exist")
    spec: Doc = mapping(auth.get("spec"))
    unsupported = [p for p in UNSUPPORTED_PROVIDERS if spec.get(p)]
    identity = mapping(spec.get("podIdentity"))
    provider = str(identity.get("provider") or "none")
    if provider not in ("none", "aws"):
        unsupported.append(f"podIdentity {provider}")
    elif provider == "aws" and identity.get("identityOwner") == "workload":
        unsupported.append("podIdentity aws with identityOwner workload")
    if unsupported:
        raise AuthError(
            f"{source} uses {', '.join(unsupported)}, which keda-queue-scaler does not "
            "resolve: use secretTargetRef, configMapTargetRef or env (and, for AWS, the "
            "scaler's own identity with podIdentity aws)"
        )

    def lookup(kind: str, ns: str, obj: str) -> Mapping[str, str] | None:
        return objects.data(kind, ns, obj)

    params: dict[str, str] = {}
    env_refs = mappings(spec.get("env"))
    if env_refs:
        if doc.get("kind") != "ScaledJob":
            raise AuthError(
                f"{source} takes env parameters from the workload, which keda-queue-scaler "
                "reads only for ScaledJobs: use secretTargetRef for a ScaledObject"
            )
        environments: dict[str, dict[str, str]] = {}  # per container, resolved once
        for e in env_refs:
            if kind == CLUSTER_KIND and str(e.get("parameter")) in _bound(keys):
                raise PolicyError(
                    f'{source} takes "{quoted(str(e.get("parameter")))}" from the workload\'s '
                    "environment: a ClusterTriggerAuthentication's target and identity must "
                    "come from its own Secrets or ConfigMaps, not from the namespace using it"
                )
            name_of = str(e.get("containerName") or "")
            if name_of not in environments:
                environments[name_of] = container_env(_container(doc, name_of), namespace, lookup)
            params[str(e.get("parameter"))] = environments[name_of].get(str(e.get("name")), "")
    for field_name, kind_name in (
        ("configMapTargetRef", "ConfigMap"),
        ("secretTargetRef", "Secret"),
    ):
        for e in mappings(spec.get(field_name)):
            obj, key = str(e.get("name", "")), str(e.get("key", ""))
            values = lookup(kind_name, where, obj)
            if values is None:
                raise AuthError(f"{source}: {kind_name} {where}/{obj} does not exist")
            if key not in values:
                raise AuthError(f'{source}: {kind_name} {where}/{obj} has no key "{quoted(key)}"')
            params[str(e.get("parameter"))] = values[key]
    if provider == "aws" and identity.get("roleArn"):
        params["awsRoleArn"] = str(identity["roleArn"])
        if identity.get("externalID"):
            params["awsExternalId"] = str(identity["externalID"])
    return ResolvedAuth(params, source, kind == CLUSTER_KIND, aws_pod_identity=provider == "aws")


def apply(
    metadata: Mapping[str, str], auth: ResolvedAuth, keys: type[TriggerMetadata] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(metadata, parameters only a TriggerAuthentication gives): each parameter fills
    the key ``keys`` declares for it, in the order that key declares (KEDA's typed
    config ``order=``), so the trigger's own value wins where KEDA's does. Keys
    declared auth-only (broker TLS: ``tls``, ``ca``, ``cert``, ``key``,
    ``keyPassword``) come back apart: trigger metadata never sets them."""
    if metadata.get(REF_KEY):
        raise MetadataError(
            f'parameter "{REF_KEY}" and an authenticationRef ({auth.source}) both give '
            "credentials: use one"
        )
    params = {k: v for k, v in auth.params.items() if v != ""}
    if auth.cluster and params:
        _check_cluster_target(metadata, auth, keys)
    merged = dict(metadata)
    specs = keys.keys() if keys else ()
    for spec in specs:
        names, order = spec.every_name(), spec.auth_order
        value = next((params[n] for n in names if params.get(n)), None)
        if value is None or not order:
            continue
        plain = any(metadata.get(n, "").strip() for n in names)
        from_env = any(metadata.get(f"{n}FromEnv", "").strip() for n in names)
        if order in ("tm;auth;env", "tm;auth"):
            if not plain:
                merged[names[0]] = value  # a plain key is read before its FromEnv form
        elif order == "tm;env;auth":
            if not plain and not from_env:
                merged[names[0]] = value
        elif order == "auth;env":  # read only as FromEnv by our parser: auth replaces it
            for n in names:
                merged.pop(f"{n}FromEnv", None)
            merged[f"{names[0]}FromEnv"] = value
    if keys is not None and keys.aws_authorization:
        _apply_aws(merged, params, auth)
    auth_only = keys.auth_only_names() if keys else frozenset()
    only = {k: v for k, v in params.items() if k in auth_only}
    return merged, only


def _apply_aws(merged: dict[str, str], params: Mapping[str, str], auth: ResolvedAuth) -> None:
    """KEDA's GetAwsAuthorization: pod identity ``aws`` uses the scaler's own identity
    (its roleArn, else an ``awsRoleArn`` parameter); otherwise, unless identityOwner is
    ``operator``, an ``awsRoleArn`` parameter, else parameter keys, replace the
    trigger's own keys."""
    role = params.get("awsRoleArn", "")
    if auth.aws_pod_identity:
        for k in _AWS_KEYS:
            merged.pop(k, None)
        if role:
            merged["awsRoleArn"] = role
            if params.get("awsExternalId"):
                merged["awsExternalId"] = params["awsExternalId"]
        return
    if merged.get("identityOwner", "").strip() == "operator":
        return
    key_id = params.get("awsAccessKeyID") or params.get("awsAccessKeyId") or ""
    if role:
        for k in _AWS_KEYS:
            merged.pop(k, None)
        merged["awsRoleArn"] = role
    elif key_id:
        for k in _AWS_KEYS:
            merged.pop(k, None)
        merged["awsAccessKeyID"] = key_id
        if params.get("awsSecretAccessKey"):
            merged["awsSecretAccessKeyFromEnv"] = params["awsSecretAccessKey"]
        if params.get("awsSessionToken"):
            merged["awsSessionTokenFromEnv"] = params["awsSessionToken"]


def _check_cluster_target(
    metadata: Mapping[str, str], auth: ResolvedAuth, keys: type[TriggerMetadata] | None
) -> None:
    """A ClusterTriggerAuthentication's Secrets belong to the cluster's operators, and
    any namespace may name one: its credentials go only where it says. The trigger
    may not set a target or identity key, and a Redis or RabbitMQ one must carry its
    own target (as a credential set must)."""
    for key in _bound(keys):
        for name in (key, f"{key}FromEnv"):
            if name in metadata:
                raise PolicyError(
                    f'parameter "{name}" may not be set with {auth.source}: a '
                    "ClusterTriggerAuthentication fixes where its credentials go (its own "
                    "address, host or endpoint) and whom they act as"
                )
    # Its TLS is the operator's too: the trigger may not switch off certificate checks.
    tls_on = "true" if str(auth.params.get("tls", "")).strip() == "enable" else ""
    check_transport(metadata, {"enableTLS": tls_on}, auth.source)
    needed = keys.required_target() if keys else ()
    if needed and not any(auth.params.get(k) for k in needed):
        raise PolicyError(
            f"{auth.source} names no broker for its credentials: add a "
            f"{' or '.join(repr(k) for k in needed)} parameter to it, so they can only "
            "reach that broker"
        )
