"""Where the scaler's AWS requests may go, and which roles its own identity may
assume: the SQS broker's rule over every trigger, set by the scaler's operator
(``--allow-aws-endpoints``, ``--allow-aws-roles``). No I/O."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from urllib.parse import urlsplit

from scaler.brokers.sqs.metadata import SqsQuery
from scaler.errors import PolicyError
from scaler.guard import quoted
from scaler.trigger import AnyTrigger


@dataclass(frozen=True)
class AwsPolicy:
    """Where the scaler's AWS requests may go, and which roles it may assume with its
    own identity. Metadata never chooses where a signed request travels:

    - an ``awsEndpoint`` must be one of ``endpoints`` unless a credential set chose it
      (the operator's choice needs no listing);
    - an ``awsRoleArn`` assumed with the scaler's own identity (the parsed trigger
      brings no keys of its own, and no credential set chose the role) must match one
      of ``roles`` (``*`` wildcards).

    Both are decided from the parsed trigger, the values the adapter will use, so a
    blank or padded key cannot make the check and the read disagree.
    """

    endpoints: frozenset[str] = frozenset()
    roles: tuple[str, ...] = ()

    @staticmethod
    def normal(url: str) -> str:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"

    def check(self, trigger: AnyTrigger, from_credential_set: bool) -> None:
        if from_credential_set:
            return
        query = trigger.query
        assert isinstance(query, SqsQuery)
        identity = query.identity
        if identity.endpoint:
            try:
                allowed = self.normal(identity.endpoint) in {self.normal(e) for e in self.endpoints}
            except ValueError:
                allowed = False
            if not allowed:
                raise PolicyError(
                    f'parameter "awsEndpoint" value "{quoted(identity.endpoint)}" is not one of '
                    "the scaler's --allow-aws-endpoints (KQS_ALLOW_AWS_ENDPOINTS): requests "
                    "signed with AWS credentials go only to endpoints the scaler's operator lists"
                )
        role = identity.role_arn
        if (
            role
            and identity.access_key_id is None
            and not any(fnmatch.fnmatchcase(role, p) for p in self.roles)
        ):
            raise PolicyError(
                f'parameter "awsRoleArn" value "{quoted(role)}" is not one of the scaler\'s '
                "--allow-aws-roles (KQS_ALLOW_AWS_ROLES): the scaler assumes a role with its "
                "own identity only when its operator lists it"
            )
