"""``scalerType: aws-sqs-queue``: KEDA's built-in SQS trigger, over aiobotocore.

Value = ApproximateNumberOfMessages, + ApproximateNumberOfMessagesNotVisible when
``scaleOnInFlight`` (default true), + ApproximateNumberOfMessagesDelayed when
``scaleOnDelayed`` (default false), from one GetQueueAttributes call that asks for
exactly those attributes. ``queueURL`` is a full queue URL or a bare queue name;
a name is resolved once with GetQueueUrl and remembered.

Credentials, first match wins:
1. ``awsAccessKeyID`` (or ``awsAccessKeyIDFromEnv``) with ``awsSecretAccessKeyFromEnv``
   (and optional ``awsSessionTokenFromEnv``): static keys that KEDA resolved from the
   Job's environment;
2. otherwise botocore's default chain on the scaler's pod: environment variables,
   web identity token file (IRSA / EKS Pod Identity), container and instance
   metadata, shared config and profiles.
With ``awsRoleArn`` (and optional ``awsExternalId``), the credentials above are used
only to call STS AssumeRole; the temporary credentials are cached and refreshed
by botocore before they expire (15 minutes ahead, by default).

One client per (region, endpoint), opened on first use and shared by every
identity (each read signs with its own credentials); redirects are never
followed, so a signed request goes to the endpoint and nowhere else.
Every call has one deadline, the read timeout: botocore makes single attempts
(connect and read timeouts of half the budget each) and the adapter retries once,
after 50 ms, only for transient failures (connection errors, throttling, 5xx) and
only when time is left, so retries never stretch a read past the timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from scaler.brokers.pool import ClientBudget
    from scaler.brokers.sqs.metadata import SqsQuery
    from scaler.settings import Settings
    from scaler.trigger import AnyAdapter, Trigger


def open_adapter(*, settings: Settings, budget: ClientBudget) -> AnyAdapter:
    """The SQS adapter a server built from ``settings`` reads with (client imported here,
    so importing this package loads no client library)."""
    from scaler.brokers.sqs.client import SqsAdapter

    return SqsAdapter(timeout=settings.read_timeout, budget=budget)


def open_policy(*, settings: Settings) -> Callable[[Trigger[SqsQuery, float], bool], None]:
    """The rule every SQS trigger passes before a read: endpoints and roles the
    scaler's operator lists (:class:`~scaler.brokers.sqs.policy.AwsPolicy`)."""
    from scaler.brokers.sqs.policy import AwsPolicy
    from scaler.settings import split_list

    policy = AwsPolicy(
        endpoints=frozenset(split_list(settings.allow_aws_endpoints)),
        roles=split_list(settings.allow_aws_roles),
    )
    return policy.check
