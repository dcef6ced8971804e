"""Reads of SQS queue attributes over aiobotocore: one client per (region, endpoint)
signing for every identity, redirects refused, botocore's errors turned into ours at
this edge."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import math
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from typing import Any, Protocol, TypeVar

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
from botocore.credentials import CredentialProvider, ReadOnlyCredentials
from botocore.parsers import ResponseParserError
from yarl import URL

from scaler.brokers.pool import ClientBudget, ClientPool
from scaler.brokers.sqs.metadata import SqsIdentity, SqsQuery
from scaler.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerPermissionError,
    BrokerThrottled,
    BrokerTimeout,
    BrokerUnavailable,
    QueueNotFound,
    ScalerError,
    UnsupportedState,
)
from scaler.metadata import fingerprint
from scaler.trigger import Aged

_ROLE_SESSION_NAME = "keda-queue-scaler"


_ROLE_SECONDS = 3600


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


class _Signs(Protocol):
    """Credentials a request can be signed with (botocore's, static or refreshable)."""

    async def get_frozen_credentials(self) -> ReadOnlyCredentials: ...


class _AwsClient(Protocol):
    """The calls this adapter makes of an aiobotocore SQS or STS client."""

    async def get_queue_attributes(
        self, *, QueueUrl: str, AttributeNames: list[str]
    ) -> Mapping[str, object]: ...

    async def get_queue_url(self, *, QueueName: str) -> Mapping[str, object]: ...

    async def assume_role(self, **request: str | int) -> Mapping[str, object]: ...

    async def get_metric_statistics(self, **request: object) -> Mapping[str, object]: ...

    async def close(self) -> None: ...


#: The credentials of the read that is signing now. One client per (region, endpoint)
#: serves every identity: its credentials object (below) asks this variable, which
#: each read sets for its own task, at each signature.
_SIGNING_AS: contextvars.ContextVar[_Signs] = contextvars.ContextVar("kqs_sqs_signing_as")


class _PerCallCredentials(AioCredentials):  # type: ignore[misc]
    """Credentials that are whichever identity the current read signs as."""

    def __init__(self) -> None:
        super().__init__("", "", None, method=_FixedProvider.METHOD)

    async def get_frozen_credentials(self) -> ReadOnlyCredentials:
        current = _SIGNING_AS.get(None)
        if current is None:
            raise bexc.NoCredentialsError()
        return await current.get_frozen_credentials()


class _NoRedirects(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session, never following a redirect: a 3xx is answered to
    botocore as it came (an error naming its status), so no endpoint can send a
    signed request, or the scaler, anywhere else."""

    async def _get_session(self, proxy_url: str | None) -> _RequestsWithoutRedirects:
        return _RequestsWithoutRedirects(await super()._get_session(proxy_url))


class Redirected(Exception):
    """An AWS endpoint answered a redirect (a 3xx status), which is never followed."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _RequestsWithoutRedirects:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    # aiobotocore passes aiohttp's own keyword arguments through, typed by aiohttp.
    async def request(self, method: str, url: URL, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await self._session.request(method, url, allow_redirects=False, **kwargs)
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


T = TypeVar("T")


async def _once(method: Callable[..., Awaitable[T]], **kwargs: object) -> T:
    try:
        return await method(**kwargs)
    except _EXPECTED:
        raise
    except Exception as exc:
        raise _Unreadable(exc) from None


async def _call(method: Callable[..., Awaitable[T]], deadline: float, **kwargs: object) -> T:
    """One botocore call, retried once for a transient failure if time is left."""
    loop = asyncio.get_running_loop()
    try:
        return await _once(method, **kwargs)
    except (bexc.ClientError, bexc.BotoCoreError) as exc:
        if not _transient(exc) or loop.time() + 2 * _RETRY_PAUSE >= deadline:
            raise
    await asyncio.sleep(_RETRY_PAUSE)
    return await _once(method, **kwargs)


#: How far back a read looks for CloudWatch's age of a queue (seconds).
AGE_WINDOW = 900


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
        self._clients: ClientPool[_AwsClient] = ClientPool(
            close=_close_client, idle_seconds=idle_seconds, budget=budget
        )
        self._identities: OrderedDict[Hashable, _Signs] = OrderedDict()
        self._max_identities = max_identities
        self._own: _Signs | None = None  # the scaler's own (botocore's chain), once found
        self._urls: dict[Hashable, str] = {}
        #: STS AssumeRole calls made, for tests and the cost docs.
        self.assume_role_calls = 0

    async def read(self, query: SqsQuery) -> float | Aged:
        """The count; with ``query.age`` also CloudWatch's latest
        ApproximateAgeOfOldestMessage, a reading a minute or more old (docs/age.md)."""
        what = f'reading queue "{query.queue_name}"'
        deadline = asyncio.get_running_loop().time() + self._timeout
        age: float | None = None
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
                    if query.age:
                        what = f'reading CloudWatch\'s age of queue "{query.queue_name}"'
                        async with self._client("cloudwatch", query.identity) as watch:
                            age = await self._age(watch, query, deadline)
                finally:
                    _SIGNING_AS.reset(signing)
        except ScalerError:
            raise
        except (*_EXPECTED, _Unreadable) as exc:
            raise translate(exc, query.identity, what) from exc
        total = self._total(reply, query)
        if not query.age:
            return total
        if age is None and total > 0:
            raise UnsupportedState(
                f"CloudWatch has no ApproximateAgeOfOldestMessage for queue "
                f'"{query.queue_name}" in the last {AGE_WINDOW // 60} minutes while it holds '
                f"{total:g} messages: SQS sends it every minute for an active queue; check "
                "the queue's metrics in CloudWatch (docs/age.md)"
            )
        return Aged(total, age=age or 0.0)

    async def _age(self, watch: _AwsClient, query: SqsQuery, deadline: float) -> float | None:
        """The newest datapoint of ApproximateAgeOfOldestMessage (Maximum, 1-minute
        periods) in the last AGE_WINDOW seconds, or None when there is none."""
        end = self._now()
        reply = await _call(
            watch.get_metric_statistics,
            deadline,
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": query.queue_name}],
            StartTime=end - datetime.timedelta(seconds=AGE_WINDOW),
            EndTime=end,
            Period=60,
            Statistics=["Maximum"],
        )
        points = reply.get("Datapoints")
        if not isinstance(points, list):
            raise BrokerError(
                f"{query.identity.describe()} answered GetMetricStatistics without Datapoints"
            )
        newest: tuple[datetime.datetime, float] | None = None
        for point in points:
            when = point.get("Timestamp") if isinstance(point, dict) else None
            value = point.get("Maximum") if isinstance(point, dict) else None
            if (
                not isinstance(when, datetime.datetime)
                or not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise BrokerError(
                    f"{query.identity.describe()} answered GetMetricStatistics with a "
                    "datapoint that is not a time and a number"
                )
            if newest is None or when > newest[0]:
                newest = (when, float(value))
        return None if newest is None else max(0.0, newest[1])

    def _total(self, reply: Mapping[str, object], query: SqsQuery) -> float:
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

    async def _queue_url(self, client: _AwsClient, query: SqsQuery, deadline: float) -> str:
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
    async def _client(self, service: str, identity: SqsIdentity) -> AsyncIterator[_AwsClient]:
        """The shared client of ``service`` for the identity's region and endpoint."""
        args: dict[str, object] = {"region_name": identity.region, "config": self._config}
        if identity.endpoint:
            args["endpoint_url"] = identity.endpoint

        async def open_client() -> _AwsClient:
            client: _AwsClient = await self._session.create_client(service, **args).__aenter__()
            return client

        ident = (service, identity.region, identity.endpoint)
        async with self._clients.lease(ident, open_client) as client:
            yield client

    async def _credentials(self, identity: SqsIdentity) -> _Signs:
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

    async def _own_credentials(self) -> _Signs:
        """The scaler pod's own identity: botocore's default chain (environment, web
        identity token, container and instance metadata, shared config), found once."""
        if self._own is None:
            self._own = await AioSession().get_credentials()
            if self._own is None:
                raise bexc.NoCredentialsError()
        return self._own

    def _assumed(self, identity: SqsIdentity, base: _Signs) -> _Signs:
        """Credentials of ``identity``'s role: AssumeRole signed with ``base``, on first
        use and again before the temporary credentials expire (botocore refreshes 15
        minutes ahead)."""

        async def assume() -> dict[str, str]:
            args: dict[str, str | int] = {
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

        credentials: _Signs = AioDeferredRefreshableCredentials(
            refresh_using=assume, method=_FixedProvider.METHOD, time_fetcher=self._now
        )
        return credentials

    async def aclose(self) -> None:
        self._urls.clear()
        self._identities.clear()
        await self._clients.aclose()


def _role_credentials(reply: object, identity: SqsIdentity) -> dict[str, str]:
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


async def _close_client(client: _AwsClient) -> None:
    with contextlib.suppress(bexc.BotoCoreError, OSError):
        await client.close()
