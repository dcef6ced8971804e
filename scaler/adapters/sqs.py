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

import asyncio
import contextlib
import contextvars
import datetime
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioCredentialResolver,
    AioCredentials,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore import exceptions as bexc
from botocore.credentials import CredentialProvider
from botocore.parsers import ResponseParserError

from scaler.adapters.base import ClientBudget, ClientPool, Trigger, metric_name
from scaler.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerPermissionError,
    BrokerThrottled,
    BrokerTimeout,
    BrokerUnavailable,
    MetadataError,
    QueueNotFound,
    ScalerError,
)
from scaler.guard import Destination, quoted
from scaler.metadata import Secret, TriggerMetadata, fingerprint, key, one_of, positive, secret_key

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
_ROLE_SESSION_NAME = "keda-queue-scaler"
_ROLE_SECONDS = 3600


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

    def destinations(self) -> tuple[Destination, ...]:
        """Where signed requests go: ``awsEndpoint``, else AWS's regional endpoints
        (botocore sends every call to the client's endpoint, never to the queue URL's
        host). With a role, STS is called there first."""
        identity = self.identity
        if identity.endpoint:
            parts = urlsplit(identity.endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            return (Destination(parts.hostname or "", port, "SQS endpoint"),)
        suffix = "amazonaws.com.cn" if identity.region.startswith("cn-") else "amazonaws.com"
        out = [Destination(f"sqs.{identity.region}.{suffix}", 443, "SQS endpoint")]
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
class SqsMetadata(TriggerMetadata):
    scaler_types: ClassVar[tuple[str, ...]] = ("aws-sqs-queue",)

    queue_url: str = key("queueURL", from_env=True, doc="queue URL or queue name")
    queue_length: int = key("queueLength", default=5, check=positive, doc="target messages per Job")
    activation_queue_length: int = key("activationQueueLength", default=0)
    aws_region: str = key("awsRegion", doc="the queue's AWS region, e.g. eu-west-1")
    aws_endpoint: str = key("awsEndpoint", default="", doc="custom SQS/STS endpoint URL")
    scale_on_in_flight: bool = key("scaleOnInFlight", default=True)
    scale_on_delayed: bool = key("scaleOnDelayed", default=False)
    identity_owner: str = key("identityOwner", default="pod", check=one_of("pod", "operator"))
    aws_access_key_id: Secret | None = secret_key("awsAccessKeyID", aliases=("awsAccessKeyId",))
    aws_secret_access_key: Secret | None = secret_key("awsSecretAccessKey", plain=False)
    aws_session_token: Secret | None = secret_key("awsSessionToken", plain=False)
    aws_role_arn: str = key("awsRoleArn", default="", doc="IAM role to assume")
    aws_external_id: Secret | None = secret_key("awsExternalId", doc="external ID for the role")
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
        return metric_name("aws-sqs", self.queue_name()), float(self.queue_length)

    def trigger(self, scaler_type: str) -> Trigger:
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
        metric, target = self.spec(scaler_type)
        return Trigger(
            scaler_type=scaler_type,
            metric_name=metric,
            target=target,
            activation=float(self.activation_queue_length),
            query=SqsQuery(identity, url, name, tuple(attributes)),
        )


_NOT_FOUND = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_AUTH = {
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    "ExpiredToken", "ExpiredTokenException", "InvalidSecurity", "IncompleteSignature",
    "MissingAuthenticationToken", "InvalidAccessKeyId",
}  # fmt: skip
_DENIED = {"AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException"}
_THROTTLED = {
    "Throttling", "ThrottlingException", "RequestThrottled", "OverLimit",
    "TooManyRequestsException", "RequestLimitExceeded",
}  # fmt: skip


def _code(text: str) -> str:
    """An AWS error code as we may show it: a short word, or nothing."""
    return text if re.fullmatch(r"[A-Za-z0-9.:_-]{1,64}", text) else ""


def translate(exc: BaseException, identity: SqsIdentity, what: str) -> ScalerError:
    """botocore/aiohttp exception -> our error tree; messages carry no credentials."""
    where = identity.describe()
    if isinstance(exc, bexc.HTTPClientError) and isinstance(exc.kwargs.get("error"), Redirected):
        return BrokerError(
            f"{where} answered {exc.kwargs['error']} while {what}: a redirect, which the "
            "scaler never follows (awsEndpoint must be the service's own endpoint)"
        )
    if isinstance(exc, _Unreadable):
        return BrokerError(
            f"{where} answered in a form the AWS client cannot read while {what} ({exc.kind})"
        )
    if isinstance(exc, bexc.ClientError):
        found, _ = _error(exc)
        codes = set(found)
        # The error's Message is the endpoint's text: not ours to echo (it could be
        # anything an endpoint chooses to send). Our sentence and AWS's code only.
        message = _code(found[0]) or "error"
        if codes & _NOT_FOUND:
            return QueueNotFound(f"{what}: the queue does not exist at {where}: {message}")
        if codes & _AUTH:
            return BrokerAuthError(f"{where} refused the credentials while {what}: {message}")
        if codes & _DENIED:
            return BrokerPermissionError(
                f"{where}: access denied while {what} (the identity needs "
                f"sqs:GetQueueAttributes and sqs:GetQueueUrl): {message}"
            )
        if codes & _THROTTLED:
            return BrokerThrottled(f"{where} throttled us while {what}: {message}")
        return BrokerError(f"{where} failed while {what}: {message}")
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return BrokerAuthError(
            f"no usable AWS credentials for {where} while {what}: give the scaler's pod an "
            "IAM role (IRSA / Pod Identity) or AWS_* variables, or set awsAccessKeyIDFromEnv "
            "and awsSecretAccessKeyFromEnv in the trigger"
        )
    if isinstance(exc, bexc.ReadTimeoutError | bexc.ConnectTimeoutError | TimeoutError):
        return BrokerTimeout(f"{where} did not answer in time while {what}")
    if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectionError | OSError):
        return BrokerUnavailable(f"cannot reach {where} while {what}: {exc}")
    if isinstance(exc, ResponseParserError):  # botocore.parsers': not a BotoCoreError
        # Its text holds the response body, which is the endpoint's, not ours to echo.
        return BrokerError(f"{where} answered with a body that is not an SQS response while {what}")
    return BrokerError(f"{where} failed while {what}: {type(exc).__name__}")


class _FixedProvider(CredentialProvider):  # type: ignore[misc]
    """Hands aiobotocore's resolver one credentials object."""

    METHOD = "keda-queue-scaler-per-call"

    def __init__(self, credentials: AioCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    async def load(self) -> AioCredentials:
        return self._credentials


#: The credentials of the read that is signing now. One client per (region, endpoint)
#: serves every identity: its credentials object (below) asks this variable, which
#: each read sets for its own task, at each signature.
_SIGNING_AS: contextvars.ContextVar[Any] = contextvars.ContextVar("kqs_sqs_signing_as")


class _PerCallCredentials(AioCredentials):  # type: ignore[misc]
    """Credentials that are whichever identity the current read signs as."""

    def __init__(self) -> None:
        super().__init__("", "", None, method=_FixedProvider.METHOD)

    async def get_frozen_credentials(self) -> Any:
        current = _SIGNING_AS.get(None)
        if current is None:
            raise bexc.NoCredentialsError()
        return await current.get_frozen_credentials()


class _NoRedirects(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session, never following a redirect: a 3xx is answered to
    botocore as it came (an error naming its status), so no endpoint can send a
    signed request, or the scaler, anywhere else."""

    async def _get_session(self, proxy_url: Any) -> Any:
        return _RequestsWithoutRedirects(await super()._get_session(proxy_url))


class Redirected(Exception):
    """An AWS endpoint answered a redirect (a 3xx status), which is never followed."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _RequestsWithoutRedirects:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def request(self, *args: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await self._session.request(*args, allow_redirects=False, **kwargs)
        if 300 <= response.status < 400:
            # Before botocore parses it: a query-protocol parser (STS) would call an
            # empty redirect body "invalid XML" and hide the status.
            response.release()
            raise Redirected(response.status)
        return response


_ATTRIBUTE = re.compile(r"[+-]?[0-9]{1,19}")
_RETRY_CODES = _THROTTLED | {"InternalError", "ServiceUnavailable", "InternalFailure"}
_RETRY_PAUSE = 0.05


def _error(exc: bexc.ClientError) -> tuple[list[str], int]:
    """([Code, QueryErrorCode], HTTP status) of an error answer, whatever its shape."""
    response = exc.response if isinstance(exc.response, dict) else {}
    error = response.get("Error")
    error = error if isinstance(error, dict) else {}
    codes = [str(error.get(k, "")) for k in ("Code", "QueryErrorCode")]
    meta = response.get("ResponseMetadata")
    status = meta.get("HTTPStatusCode", 0) if isinstance(meta, dict) else 0
    return codes, status if isinstance(status, int) else 0


def _transient(exc: Exception) -> bool:
    if isinstance(exc, bexc.ClientError):
        codes, status = _error(exc)
        return bool(_RETRY_CODES.intersection(codes)) or status >= 500
    return isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectionClosedError)


class _Unreadable(Exception):
    """The AWS client library broke on an endpoint's answer in a way of its own (an
    answer of the wrong shape can reach code that expects a dict): the endpoint's
    doing, so a BrokerError, never INTERNAL."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.kind = type(cause).__name__


_EXPECTED = (
    bexc.ClientError, bexc.BotoCoreError, ResponseParserError, ScalerError, OSError, TimeoutError,
)  # fmt: skip


async def _once(method: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return await method(**kwargs)
    except _EXPECTED:
        raise
    except Exception as exc:
        raise _Unreadable(exc) from None


async def _call(method: Callable[..., Any], deadline: float, **kwargs: Any) -> Any:
    """One botocore call, retried once for a transient failure if time is left."""
    loop = asyncio.get_running_loop()
    try:
        return await _once(method, **kwargs)
    except (bexc.ClientError, bexc.BotoCoreError) as exc:
        if not _transient(exc) or loop.time() + 2 * _RETRY_PAUSE >= deadline:
            raise
    await asyncio.sleep(_RETRY_PAUSE)
    return await _once(method, **kwargs)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SqsAdapter:
    """Counts SQS messages.

    Memory does not grow with identities: one aiobotocore client (and connection
    pool) per (region, endpoint), opened from one shared session, serves every
    identity. A read names its identity's credentials in a context variable, which
    the client's credentials object hands the signer at each signature. An identity
    costs a small credentials object (kept for the ``max_identities`` most recently
    used), a role also its AssumeRole answer, refreshed before it expires.
    """

    def __init__(
        self,
        *,
        timeout: float,
        now: Callable[[], datetime.datetime] = _utcnow,
        role_seconds: int = _ROLE_SECONDS,
        idle_seconds: float = 600.0,
        budget: ClientBudget | None = None,
        max_identities: int = 10_000,
    ) -> None:
        self._timeout = timeout
        self._now = now
        self._role_seconds = role_seconds
        per_try = max(timeout / 2, 0.1)
        self._config = AioConfig(
            connect_timeout=per_try,
            read_timeout=per_try,
            retries={"total_max_attempts": 1},  # retries are ours: see _call
            user_agent_extra="keda-queue-scaler",
            http_session_cls=_NoRedirects,
        )
        self._session = AioSession()
        self._session.register_component(
            "credential_provider", AioCredentialResolver([_FixedProvider(_PerCallCredentials())])
        )
        # ("sqs" | "sts", region, endpoint) -> client
        self._clients: ClientPool[Any] = ClientPool(
            close=_close_client, idle_seconds=idle_seconds, budget=budget
        )
        self._identities: OrderedDict[Hashable, Any] = OrderedDict()
        self._max_identities = max_identities
        self._own: Any = None  # the scaler's own credentials (botocore's chain), once found
        self._urls: dict[Hashable, str] = {}
        #: STS AssumeRole calls made, for tests and the cost docs.
        self.assume_role_calls = 0

    async def read(self, query: Any) -> float:
        assert isinstance(query, SqsQuery)
        what = f'reading queue "{query.queue_name}"'
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):
                signing = _SIGNING_AS.set(await self._credentials(query.identity))
                try:
                    async with self._client("sqs", query.identity) as client:
                        url = query.queue_url or await self._queue_url(client, query, deadline)
                        reply = await _call(
                            client.get_queue_attributes,
                            deadline,
                            QueueUrl=url,
                            AttributeNames=list(query.attributes),
                        )
                finally:
                    _SIGNING_AS.reset(signing)
        except ScalerError:
            raise
        except (*_EXPECTED, _Unreadable) as exc:
            raise translate(exc, query.identity, what) from exc
        attributes = reply.get("Attributes")
        if not isinstance(attributes, dict):
            attributes = {}
        missing = [a for a in query.attributes if a not in attributes]
        if missing:
            raise BrokerError(
                f"{query.identity.describe()} did not return {', '.join(missing)} for queue "
                f'"{query.queue_name}"'
            )
        total = 0
        for name in query.attributes:
            text = str(attributes[name])
            # KEDA: strconv.ParseInt(value, 10, 64)
            if not _ATTRIBUTE.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
                raise BrokerError(
                    f"{query.identity.describe()} answered {name} for queue "
                    f'"{query.queue_name}" with a value that is not an integer'
                )
            total += int(text)
        return float(total)

    async def _queue_url(self, client: Any, query: SqsQuery, deadline: float) -> str:
        ident = (fingerprint(query.identity), query.queue_name)
        url = self._urls.get(ident)
        if url is None:
            reply = await _call(client.get_queue_url, deadline, QueueName=query.queue_name)
            found = reply.get("QueueUrl")
            if not isinstance(found, str) or not found:
                raise BrokerError(
                    f"{query.identity.describe()} answered GetQueueUrl for queue "
                    f'"{query.queue_name}" without a QueueUrl'
                )
            if len(self._urls) >= 10_000:  # names of identities long gone: start over
                self._urls.clear()
            url = self._urls[ident] = found
        return url

    @contextlib.asynccontextmanager
    async def _client(self, service: str, identity: SqsIdentity) -> AsyncIterator[Any]:
        """The shared client of ``service`` for the identity's region and endpoint."""
        args: dict[str, Any] = {"region_name": identity.region, "config": self._config}
        if identity.endpoint:
            args["endpoint_url"] = identity.endpoint

        async def open_client() -> Any:
            return await self._session.create_client(service, **args).__aenter__()

        ident = (service, identity.region, identity.endpoint)
        async with self._clients.lease(ident, open_client) as client:
            yield client

    async def _credentials(self, identity: SqsIdentity) -> Any:
        """The credentials a read of ``identity`` signs with, made once per identity."""
        key = fingerprint(identity)
        found = self._identities.get(key)
        if found is not None:
            self._identities.move_to_end(key)
            return found
        if identity.access_key_id is not None and identity.secret_access_key is not None:
            base = AioCredentials(
                identity.access_key_id.reveal(),
                identity.secret_access_key.reveal(),
                identity.session_token.reveal() if identity.session_token else None,
            )
        else:
            base = await self._own_credentials()
        made = self._assumed(identity, base) if identity.role_arn else base
        self._identities[key] = made
        if len(self._identities) > self._max_identities:
            self._identities.popitem(last=False)
        return made

    async def _own_credentials(self) -> Any:
        """The scaler pod's own identity: botocore's default chain (environment, web
        identity token, container and instance metadata, shared config), found once."""
        if self._own is None:
            self._own = await AioSession().get_credentials()
            if self._own is None:
                raise bexc.NoCredentialsError()
        return self._own

    def _assumed(self, identity: SqsIdentity, base: Any) -> Any:
        """Credentials of ``identity``'s role: AssumeRole signed with ``base``, on first
        use and again before the temporary credentials expire (botocore refreshes 15
        minutes ahead)."""

        async def assume() -> dict[str, str]:
            args: dict[str, Any] = {
                "RoleArn": identity.role_arn,
                "RoleSessionName": _ROLE_SESSION_NAME,
                "DurationSeconds": self._role_seconds,
            }
            if identity.external_id is not None:
                args["ExternalId"] = identity.external_id.reveal()
            self.assume_role_calls += 1
            # Inside a read (first use, or a refresh while signing): its own deadline.
            deadline = asyncio.get_running_loop().time() + self._timeout
            signing = _SIGNING_AS.set(base)
            try:
                async with self._client("sts", identity) as sts:
                    reply = await _call(sts.assume_role, deadline, **args)
            except ScalerError:
                raise
            except (*_EXPECTED, _Unreadable) as exc:
                # Ours, and without its cause: botocore logs a failed refresh with its
                # traceback, and a parser's error holds the endpoint's body.
                raise translate(exc, identity, f'assuming role "{identity.role_arn}"') from None
            finally:
                _SIGNING_AS.reset(signing)
            return _role_credentials(reply, identity)

        return AioDeferredRefreshableCredentials(
            refresh_using=assume, method=_FixedProvider.METHOD, time_fetcher=self._now
        )

    async def aclose(self) -> None:
        self._urls.clear()
        self._identities.clear()
        await self._clients.aclose()


def _role_credentials(reply: Any, identity: SqsIdentity) -> dict[str, str]:
    """botocore's refresh form of an AssumeRole answer; BrokerError for one without
    usable temporary credentials (an endpoint can answer anything)."""
    creds = reply.get("Credentials") if isinstance(reply, dict) else None
    fields = ("AccessKeyId", "SecretAccessKey", "SessionToken")
    if (
        not isinstance(creds, dict)
        or not all(isinstance(creds.get(f), str) and creds[f] for f in fields)
        or not isinstance(creds.get("Expiration"), datetime.datetime)
    ):
        raise BrokerError(
            f"{identity.describe()}: STS answered AssumeRole without usable temporary "
            "credentials (AccessKeyId, SecretAccessKey, SessionToken, Expiration)"
        )
    return {
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
        "expiry_time": creds["Expiration"].isoformat(),
    }


async def _close_client(client: Any) -> None:
    with contextlib.suppress(bexc.BotoCoreError, OSError):
        await client.close()
