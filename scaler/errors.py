"""Errors that become gRPC statuses.

Every failure that reaches KEDA is one of these; anything else is a bug and is
answered INTERNAL. Adapters translate their broker client's exceptions at their
own edge (``raise BrokerUnavailable(...) from exc``) and never import gRPC: the
status is named by ``code``, a ``grpc.StatusCode`` member name, and the server
layer maps it.

    ScalerError                     (base; code UNKNOWN)
    ├── MetadataError               INVALID_ARGUMENT   bad or missing trigger metadata
    ├── PolicyError                 PERMISSION_DENIED  refused by the scaler's own rules
    ├── BrokerError                 UNAVAILABLE        no usable answer from the broker
    │   ├── BrokerUnavailable       UNAVAILABLE        cannot connect / connection lost
    │   ├── BrokerTimeout           DEADLINE_EXCEEDED  no answer within the read timeout
    │   ├── BrokerAuthError         UNAUTHENTICATED    credentials refused
    │   ├── BrokerPermissionError   PERMISSION_DENIED  authenticated but not allowed
    │   ├── QueueNotFound           NOT_FOUND          the queue/stream/group does not exist
    │   ├── BrokerThrottled         RESOURCE_EXHAUSTED the broker asks us to slow down
    │   └── UnsupportedState        FAILED_PRECONDITION the data cannot be counted as asked
    └── ShuttingDown                UNAVAILABLE        the server is stopping

Messages are shown to users (KEDA events, logs): they name the key, value, queue
or server address involved and never contain a secret.
"""

from __future__ import annotations


class ScalerError(Exception):
    """Base class: a failure with a gRPC status code name and a user-facing message."""

    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def outcome(self) -> str:
        """Short, bounded label for metrics (``unavailable``, ``not_found``...)."""
        return self.code.lower()


class MetadataError(ScalerError):
    """The trigger's scalerMetadata is missing a key or holds a bad value."""

    code = "INVALID_ARGUMENT"


class PolicyError(ScalerError):
    """The scaler's own rules refuse the trigger: a broker address it may not dial, or
    a credential set the trigger's namespace may not use. Nothing was dialed."""

    code = "PERMISSION_DENIED"


class AuthError(ScalerError):
    """A trigger's authenticationRef cannot be resolved: a TriggerAuthentication,
    Secret or key that does not exist, or a provider this scaler does not support."""

    code = "FAILED_PRECONDITION"


class KubeNotReady(ScalerError):
    """The scaler's Kubernetes cache has not loaded what this trigger needs yet."""

    code = "UNAVAILABLE"


class BrokerError(ScalerError):
    """The broker could not give a count (an error or an answer we cannot use)."""

    code = "UNAVAILABLE"


class BrokerUnavailable(BrokerError):
    code = "UNAVAILABLE"


class BrokerTimeout(BrokerError):
    code = "DEADLINE_EXCEEDED"


class BrokerAuthError(BrokerError):
    code = "UNAUTHENTICATED"


class BrokerPermissionError(BrokerError):
    code = "PERMISSION_DENIED"


class QueueNotFound(BrokerError):
    code = "NOT_FOUND"


class BrokerThrottled(BrokerError):
    code = "RESOURCE_EXHAUSTED"


class UnsupportedState(BrokerError):
    code = "FAILED_PRECONDITION"


class ShuttingDown(ScalerError):
    code = "UNAVAILABLE"
