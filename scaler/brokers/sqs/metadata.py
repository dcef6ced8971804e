"""The ``aws-sqs-queue`` trigger metadata (KEDA's keys and defaults), the identity a
read signs as and the query it makes, parsed without any I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from scaler.errors import (
    MetadataError,
)
from scaler.guard import Destination, quoted
from scaler.metadata import AgeKeys, Secret, key, one_of, positive, secret_key
from scaler.trigger import AnyTrigger, aging, counting, metric_name

VISIBLE = "ApproximateNumberOfMessages"


IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible"


DELAYED = "ApproximateNumberOfMessagesDelayed"


_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")


# sqs.<region>.amazonaws.com[.cn], <region>.queue.amazonaws.com, VPC endpoints.
_URL_REGION = (
    re.compile(r"(?:^|\.)sqs[.-](?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.(?:vpce\.)?amazonaws\.com"),
    re.compile(r"^(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.queue\.amazonaws\.com"),
)


#: botocore's own check of a region name (a label of a host name), made at parse time.
_REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)", re.ASCII)


@dataclass(frozen=True)
class SqsIdentity:
    """Who calls SQS where: one client per distinct identity."""

    region: str
    endpoint: str
    access_key_id: Secret | None
    secret_access_key: Secret | None
    session_token: Secret | None
    role_arn: str
    external_id: Secret | None

    def describe(self) -> str:
        where = self.endpoint or f"SQS in {self.region}"
        return f"{where} (role {self.role_arn})" if self.role_arn else where


@dataclass(frozen=True)
class SqsQuery:
    identity: SqsIdentity
    queue_url: str  # "" when only the name is known
    queue_name: str
    attributes: tuple[str, ...]
    #: measure: age: CloudWatch's ApproximateAgeOfOldestMessage for the queue too
    age: bool = False

    def destinations(self) -> tuple[Destination, ...]:
        """Where signed requests go: ``awsEndpoint``, else AWS's regional endpoints
        (botocore sends every call to the client's endpoint, never to the queue URL's
        host). With a role, STS is called there first; with an age, CloudWatch (at
        ``awsEndpoint`` too when one is set, as LocalStack and moto serve both)."""
        identity = self.identity
        if identity.endpoint:
            parts = urlsplit(identity.endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            return (Destination(parts.hostname or "", port, "SQS endpoint"),)
        suffix = "amazonaws.com.cn" if identity.region.startswith("cn-") else "amazonaws.com"
        out = [Destination(f"sqs.{identity.region}.{suffix}", 443, "SQS endpoint")]
        if self.age:
            out.append(
                Destination(f"monitoring.{identity.region}.{suffix}", 443, "CloudWatch endpoint")
            )
        if identity.role_arn:
            out.append(Destination(f"sts.{identity.region}.{suffix}", 443, "STS endpoint"))
        return tuple(out)


def _queue_name_from_url(text: str) -> str | None:
    """The queue name from a full URL (path exactly /<account>/<queue>, as KEDA
    requires), or None when ``text`` is not a URL. Raises MetadataError for a URL
    with another path."""
    bad = MetadataError(
        f'parameter "queueURL" value "{quoted(text)}" must be a queue URL with the path '
        "/<account-id>/<queue-name> (e.g. https://sqs.eu-west-1.amazonaws.com/"
        "123456789012/jobs) or a bare queue name"
    )
    try:
        parts = urlsplit(text)
        _ = parts.port  # a port that is not a number is a ValueError here, not later
    except ValueError:
        raise bad from None
    if not parts.scheme and not text.startswith("/"):
        return None
    path = parts.path.split("/")
    if len(path) != 3 or not path[1] or not path[2]:
        raise bad
    return path[2]


@dataclass(frozen=True, kw_only=True)
class SqsMetadata(AgeKeys):
    scaler_types: ClassVar[tuple[str, ...]] = ("aws-sqs-queue",)
    default_target: ClassVar[bool] = True  # AWS's own endpoints
    aws_authorization: ClassVar[bool] = True

    queue_url: str = key("queueURL", from_env=True, doc="queue URL or queue name")
    queue_length: int = key("queueLength", default=5, check=positive, doc="target messages per Job")
    activation_queue_length: int = key("activationQueueLength", default=0)
    aws_region: str = key(
        "awsRegion", doc="the queue's AWS region, e.g. eu-west-1", auth_order="tm;auth"
    )
    aws_endpoint: str = key(
        "awsEndpoint", default="", doc="custom SQS/STS endpoint URL", role="target"
    )
    scale_on_in_flight: bool = key("scaleOnInFlight", default=True)
    scale_on_delayed: bool = key("scaleOnDelayed", default=False)
    identity_owner: str = key("identityOwner", default="pod", check=one_of("pod", "operator"))
    aws_access_key_id: Secret | None = secret_key("awsAccessKeyID", aliases=("awsAccessKeyId",))
    aws_secret_access_key: Secret | None = secret_key("awsSecretAccessKey", plain=False)
    aws_session_token: Secret | None = secret_key("awsSessionToken", plain=False)
    aws_role_arn: str = key("awsRoleArn", default="", doc="IAM role to assume", role="identity")
    aws_external_id: Secret | None = secret_key(
        "awsExternalId", doc="external ID for the role", role="identity"
    )
    # KEDA reads these two as *names* of env vars, which it does not resolve for
    # external scalers: refuse them with the key to use instead.
    plain_secret: str = key("awsSecretAccessKey", default="", secret=True)
    plain_token: str = key("awsSessionToken", default="", secret=True)

    def queue_name(self) -> str:
        name = _queue_name_from_url(self.queue_url)
        if name is None:
            name = self.queue_url
            if not _QUEUE_NAME.match(name):
                raise MetadataError(
                    f'parameter "queueURL" value "{name}" is neither a queue URL nor a queue '
                    "name (1 to 80 letters, digits, - or _, optionally ending in .fifo)"
                )
        return name

    def validate(self, scaler_type: str) -> None:
        self.check_age()
        if not _REGION.fullmatch(self.aws_region):
            raise MetadataError(
                f'parameter "awsRegion" value "{quoted(self.aws_region)}" must be an AWS region '
                "name: up to 63 letters, digits and inner '-', not only digits (e.g. eu-west-1)"
            )
        self.queue_name()
        if (name := _queue_name_from_url(self.queue_url)) is not None:
            host = urlsplit(self.queue_url).hostname or ""
            for pattern in _URL_REGION:
                if (m := pattern.search(host)) and m["region"] != self.aws_region:
                    raise MetadataError(
                        f'parameter "awsRegion" value "{self.aws_region}" does not match the '
                        f'region "{m["region"]}" of queueURL "{self.queue_url}" ({name})'
                    )
        if self.aws_endpoint:
            bad = MetadataError(
                f'parameter "awsEndpoint" value "{quoted(self.aws_endpoint)}" must be an '
                "http(s) URL without spaces or control characters, e.g. "
                "https://sqs.eu-west-1.amazonaws.com"
            )
            if not self.aws_endpoint.isprintable() or " " in self.aws_endpoint:
                raise bad
            try:
                parts = urlsplit(self.aws_endpoint)
                _ = parts.port
            except ValueError:
                raise bad from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise bad
        for plain, use in (
            (self.plain_secret, "awsSecretAccessKey"),
            (self.plain_token, "awsSessionToken"),
        ):
            if plain:
                raise MetadataError(
                    f'parameter "{use}" is read by KEDA as the name of an environment variable, '
                    f'which KEDA does not resolve for external scalers: use "{use}FromEnv" '
                    "(KEDA sends the variable's value) or leave credentials to the scaler's pod"
                )
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise MetadataError(
                '"awsAccessKeyID" (or awsAccessKeyIDFromEnv) and "awsSecretAccessKeyFromEnv" '
                "must be given together"
            )
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise MetadataError('"awsSessionTokenFromEnv" needs "awsAccessKeyID" and its secret')
        if self.aws_external_id is not None and not self.aws_role_arn:
            raise MetadataError('"awsExternalId" needs "awsRoleArn"')
        if self.aws_role_arn and not self.aws_role_arn.startswith("arn:"):
            raise MetadataError(
                f'parameter "awsRoleArn" value "{self.aws_role_arn}" must be a role ARN, '
                "e.g. arn:aws:iam::123456789012:role/queue-reader"
            )

    def spec(self, scaler_type: str) -> tuple[str, float]:
        name = metric_name("aws-sqs", self.queue_name())
        return self.age_spec(name, float(self.queue_length))

    def trigger(self, scaler_type: str) -> AnyTrigger:
        attributes = [VISIBLE]
        if self.scale_on_in_flight:
            attributes.append(IN_FLIGHT)
        if self.scale_on_delayed:
            attributes.append(DELAYED)
        name = self.queue_name()
        identity = SqsIdentity(
            region=self.aws_region,
            endpoint=self.aws_endpoint,
            access_key_id=self.aws_access_key_id,
            secret_access_key=self.aws_secret_access_key,
            session_token=self.aws_session_token,
            role_arn=self.aws_role_arn,
            external_id=self.aws_external_id,
        )
        url = self.queue_url if _queue_name_from_url(self.queue_url) is not None else ""
        query = SqsQuery(identity, url, name, tuple(attributes), self.wants_age)
        if self.wants_age:
            return aging(scaler_type, self.spec(scaler_type), self.activation_age, query)
        return counting(
            scaler_type, self.spec(scaler_type), float(self.activation_queue_length), query
        )
