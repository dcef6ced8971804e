"""SQS: the visibility timeout is the lease.

A claim is ReceiveMessage (long polling, up to 20 s a call) with the lease as its
VisibilityTimeout; the heartbeat is ChangeMessageVisibility; an acknowledgement is
DeleteMessage. A retry or a release makes the message visible at once
(ChangeMessageVisibility 0). The attempt is SQS's ApproximateReceiveCount, so a
release counts as a receive there. A dead letter is SendMessage to the dead-letter
queue (``--dead-letter``, else the queue's own RedrivePolicy target), then
DeleteMessage: if the worker dies between the two, the message is received again
and dead-lettered again (a duplicate in the dead-letter queue, never a loss).
Credentials: ``awsAccessKeyIDFromEnv`` and ``awsSecretAccessKeyFromEnv`` (and
``awsSessionTokenFromEnv``) when given, else the container's own AWS identity
(botocore's default chain: environment, web identity, instance metadata).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import exceptions as bexc

from scaler.brokers.sqs.client import translate
from scaler.brokers.sqs.metadata import SqsQuery
from scaler.errors import BrokerError, MetadataError, ScalerError
from scaler.worker.envelope import new_id
from scaler.worker.source import Claim

_LOST = {"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidParameterValue",
         "AWS.SimpleQueueService.MessageNotInflight"}  # fmt: skip


class SqsSource:
    def __init__(self, query: SqsQuery, *, lease: float, timeout: float = 10.0,
                 dead_letter: str = "") -> None:  # fmt: skip
        if query.identity.role_arn:
            raise MetadataError(
                'parameter "awsRoleArn" is not supported by `work`: give the worker\'s Pod '
                "the role itself (IRSA or EKS Pod Identity) and leave awsRoleArn out"
            )
        self._query = query
        self._lease = max(0, min(43_200, math.ceil(lease)))  # SQS: 0 to 12 hours
        self._timeout = timeout
        self._dead_letter = dead_letter
        self._dead_url = ""
        self._url = query.queue_url
        self.where = f'SQS queue "{query.queue_name}" ({query.identity.describe()})'
        self._session = AioSession()
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def _sqs(self) -> Any:
        if self._client is None:
            identity = self._query.identity
            args: dict[str, Any] = {
                "region_name": identity.region,
                "config": AioConfig(connect_timeout=self._timeout, read_timeout=self._timeout + 20,
                                    retries={"total_max_attempts": 2},
                                    user_agent_extra="keda-queue-scaler-work"),
            }  # fmt: skip
            if identity.endpoint:
                args["endpoint_url"] = identity.endpoint
            if identity.access_key_id is not None and identity.secret_access_key is not None:
                args["aws_access_key_id"] = identity.access_key_id.reveal()
                args["aws_secret_access_key"] = identity.secret_access_key.reveal()
                if identity.session_token is not None:
                    args["aws_session_token"] = identity.session_token.reveal()
            self._client = await self._stack.enter_async_context(
                self._session.create_client("sqs", **args)
            )
        return self._client

    async def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        client = await self._sqs()
        try:
            async with asyncio.timeout(self._timeout + 25):
                return await getattr(client, method)(**kwargs)
        except ScalerError:
            raise
        except (bexc.BotoCoreError, bexc.ClientError, OSError, TimeoutError) as exc:
            raise translate(exc, self._query.identity, what) from exc

    async def _queue_url(self) -> str:
        if not self._url:
            reply = await self._call("finding the queue", "get_queue_url",
                                     QueueName=self._query.queue_name)  # fmt: skip
            self._url = str(reply["QueueUrl"])
        return self._url

    async def _dead_queue(self) -> str:
        """The dead-letter queue's URL: ``--dead-letter``'s, else the redrive policy's."""
        if self._dead_url:
            return self._dead_url
        name = self._dead_letter
        if not name:
            reply = await self._call("reading the redrive policy", "get_queue_attributes",
                                     QueueUrl=await self._queue_url(),
                                     AttributeNames=["RedrivePolicy"])  # fmt: skip
            policy = reply.get("Attributes", {}).get("RedrivePolicy")
            try:
                arn = str(json.loads(policy)["deadLetterTargetArn"]) if policy else ""
            except (ValueError, KeyError, TypeError):
                arn = ""
            if not arn:
                raise MetadataError(
                    f"{self.where} has no RedrivePolicy with a deadLetterTargetArn: give the "
                    "dead-letter queue with --dead-letter NAME|URL, or set a redrive policy"
                )
            name = arn.rsplit(":", 1)[-1]
        if "/" in name:
            self._dead_url = name
        else:
            reply = await self._call("finding the dead-letter queue", "get_queue_url",
                                     QueueName=name)  # fmt: skip
            self._dead_url = str(reply["QueueUrl"])
        return self._dead_url

    async def check(self) -> None:
        """At start: the queue exists and its dead-letter queue can be found."""
        await self._queue_url()
        await self._dead_queue()

    async def claim(self, wait: float) -> Claim | None:
        url = await self._queue_url()
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            seconds = max(0, min(20, math.ceil(deadline - time.monotonic())))
            reply = await self._call(
                "receiving a message", "receive_message", QueueUrl=url, MaxNumberOfMessages=1,
                WaitTimeSeconds=seconds, VisibilityTimeout=self._lease,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )  # fmt: skip
            for message in reply.get("Messages") or []:
                attrs = message.get("Attributes") or {}
                sent = attrs.get("SentTimestamp")
                return Claim(
                    str(message["MessageId"]), str(message.get("Body", "")).encode("utf-8"),
                    int(attrs.get("ApproximateReceiveCount", "1")),
                    int(sent) / 1000 if sent else None,
                    (message["ReceiptHandle"], message),
                )  # fmt: skip
            if time.monotonic() >= deadline:
                return None

    async def _visibility(self, claim: Claim, seconds: int, what: str) -> bool:
        receipt = claim.handle[0]  # type: ignore[index]
        try:
            await self._call(what, "change_message_visibility", QueueUrl=await self._queue_url(),
                             ReceiptHandle=receipt, VisibilityTimeout=seconds)  # fmt: skip
        except BrokerError as exc:
            if (
                isinstance(exc.__cause__, bexc.ClientError)
                and str(exc.__cause__.response.get("Error", {}).get("Code", "")) in _LOST
            ):
                return False
            raise
        return True

    async def renew(self, claim: Claim) -> bool:
        return await self._visibility(claim, self._lease, "extending the visibility timeout")

    async def ack(self, claim: Claim) -> None:
        await self._call("deleting the message", "delete_message",
                         QueueUrl=await self._queue_url(),
                         ReceiptHandle=claim.handle[0])  # type: ignore[index]  # fmt: skip

    async def retry(self, claim: Claim) -> None:
        await self._visibility(claim, 0, "returning the message")

    async def release(self, claim: Claim) -> None:
        await self._visibility(claim, 0, "releasing the message")

    async def dead_letter(self, claim: Claim) -> None:
        message = claim.handle[1]  # type: ignore[index]
        send: dict[str, Any] = {
            "QueueUrl": await self._dead_queue(),
            "MessageBody": message["Body"],
        }
        if message.get("MessageAttributes"):
            send["MessageAttributes"] = message["MessageAttributes"]
        if send["QueueUrl"].endswith(".fifo"):
            send["MessageGroupId"] = "kqs-dead"
            send["MessageDeduplicationId"] = claim.item_id
        await self._call("sending to the dead-letter queue", "send_message", **send)
        await self.ack(claim)

    async def sweep(self) -> int:
        return 0  # SQS returns a message itself when its visibility timeout ends

    async def put(self, payload: bytes) -> str:
        try:
            body = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise MetadataError("an SQS message body must be UTF-8 text") from None
        url = await self._queue_url()
        send: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        if url.endswith(".fifo"):
            send["MessageGroupId"] = "kqs"
            send["MessageDeduplicationId"] = new_id()
        reply = await self._call("sending a message", "send_message", **send)
        return str(reply["MessageId"])

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._stack.aclose()
