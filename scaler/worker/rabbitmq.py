"""RabbitMQ: manual acknowledgement with prefetch 1; the open channel is the lease.

A claim is ``basic.get`` without auto-ack (polled, from 50 ms up to 1 s apart, until
the wait ends); the item stays unacknowledged, so if the worker or its node dies the
broker sees the connection close and requeues it (RabbitMQ's heartbeat notices a
lost node; its ``consumer_timeout``, 30 minutes by default, bounds a hung one). An
acknowledgement is ``basic.ack``. A retry or a release publishes the message again
(with publisher confirms) carrying ``x-kqs-attempts``, the attempts it has used,
then acknowledges the original. A worker that died unsettled counts too: a quorum
queue's ``x-delivery-count`` gives the number, a classic queue only its
``redelivered`` flag (one more attempt, however many deaths): use a quorum queue
for an exact count. A dead letter is ``basic.reject`` without requeue, so the
queue's dead-letter exchange (a policy or ``x-dead-letter-exchange``) takes it.
Without one RabbitMQ drops the message: give the queue one, or name an exchange
with ``--dead-letter`` and the worker publishes the message there (confirmed)
before it acknowledges it.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import aiormq
import aiormq.abc
import aiormq.exceptions as amqp_errors
from pamqp.commands import Basic
from yarl import URL

from scaler.brokers.rabbitmq.client import ssl_context
from scaler.brokers.rabbitmq.metadata import RabbitServer
from scaler.errors import BrokerUnavailable, MetadataError, QueueNotFound, ScalerError
from scaler.worker import envelope
from scaler.worker.source import Claim

ATTEMPTS_HEADER = "x-kqs-attempts"


class RabbitSource:
    def __init__(self, server: RabbitServer, queue: str, *, timeout: float = 10.0,
                 dead_letter: str = "") -> None:  # fmt: skip
        if server.protocol != "amqp":
            raise MetadataError(
                '`work` takes messages over AMQP: give "host" as an amqp:// or amqps:// URL '
                "(the management API cannot deliver messages)"
            )
        self._server = server
        self._queue = queue
        self._timeout = timeout
        self._dead_exchange = dead_letter
        self.where = f'queue "{queue}" on {server.display}'
        self._conn: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None

    async def _ch(self) -> aiormq.abc.AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            url = URL(self._server.url.reveal())
            context = ssl_context(self._server) if url.scheme == "amqps" else None
            try:
                async with asyncio.timeout(self._timeout):
                    conn = aiormq.Connection(url, context=context, client_properties={
                        "connection_name": "keda-queue-scaler-work"})  # fmt: skip
                    await conn.connect()
                    self._conn = conn
                    channel = await conn.channel(publisher_confirms=True)
                    await channel.basic_qos(prefetch_count=1)
                    await channel.queue_declare(self._queue, passive=True)
            except amqp_errors.ChannelNotFoundEntity as exc:
                raise QueueNotFound(f"{self.where} does not exist") from exc
            except (amqp_errors.AMQPError, OSError, TimeoutError) as exc:
                raise BrokerUnavailable(
                    f"cannot reach {self._server.display}: {type(exc).__name__}"
                ) from exc
            self._channel = channel
        return self._channel

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await fn(*args, **kwargs)
        except ScalerError:
            raise
        except (amqp_errors.AMQPError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"{self.where}: failed while {what}: {type(exc).__name__}"
            ) from exc

    async def check(self) -> None:
        await self._ch()

    async def claim(self, wait: float) -> Claim | None:
        deadline = time.monotonic() + max(0.0, wait)
        pause = 0.05
        while True:
            channel = await self._ch()
            message = await self._call("getting a message", channel.basic_get, self._queue)
            if message.delivery_tag is not None:
                props = message.header.properties
                headers = props.headers or {}
                used = headers.get(ATTEMPTS_HEADER)
                deaths = headers.get("x-delivery-count")  # a quorum queue counts them
                attempt = (int(used) if isinstance(used, int) else 0) + 1
                if isinstance(deaths, int):
                    attempt += deaths
                elif message.redelivered:
                    attempt += 1  # a classic queue only says "delivered before"
                stamp = props.timestamp
                item_id = props.message_id or envelope.digest_id(message.body)
                return Claim(
                    item_id, message.body, attempt,
                    stamp.timestamp() if stamp is not None else None, message,
                )  # fmt: skip
            now = time.monotonic()
            if now >= deadline:
                return None
            await asyncio.sleep(min(pause, deadline - now))  # basic.get has no blocking form
            pause = min(1.0, pause * 2)

    async def renew(self, claim: Claim) -> bool:
        channel = self._channel
        return channel is not None and not channel.is_closed

    async def ack(self, claim: Claim) -> None:
        message: aiormq.abc.DeliveredMessage = claim.handle  # type: ignore[assignment]
        await self._call("acknowledging", message.channel.basic_ack, message.delivery_tag)

    async def _again(self, claim: Claim, used: int, what: str) -> None:
        message: aiormq.abc.DeliveredMessage = claim.handle  # type: ignore[assignment]
        props = message.header.properties
        headers = dict(props.headers or {})
        headers[ATTEMPTS_HEADER] = used
        again = Basic.Properties(
            content_type=props.content_type, content_encoding=props.content_encoding,
            headers=headers, delivery_mode=props.delivery_mode or 2, priority=props.priority,
            correlation_id=props.correlation_id, reply_to=props.reply_to,
            expiration=props.expiration, message_id=props.message_id or claim.item_id,
            timestamp=props.timestamp, message_type=props.message_type, user_id=props.user_id,
            app_id=props.app_id,
        )  # fmt: skip
        confirm = await self._call(what, message.channel.basic_publish, message.body,
                                   routing_key=self._queue, properties=again)  # fmt: skip
        if not isinstance(confirm, Basic.Ack):
            raise BrokerUnavailable(f"{self.where}: the broker did not confirm {what}")
        await self.ack(claim)

    async def retry(self, claim: Claim) -> None:
        await self._again(claim, claim.attempt, "returning a message")

    async def release(self, claim: Claim) -> None:
        await self._again(claim, claim.attempt - 1, "releasing a message")

    async def dead_letter(self, claim: Claim) -> None:
        message: aiormq.abc.DeliveredMessage = claim.handle  # type: ignore[assignment]
        if self._dead_exchange:
            confirm = await self._call(
                "dead-lettering", message.channel.basic_publish, message.body,
                exchange=self._dead_exchange, routing_key=self._queue,
                properties=message.header.properties,
            )  # fmt: skip
            if not isinstance(confirm, Basic.Ack):
                raise BrokerUnavailable(f"{self.where}: the broker did not confirm a dead letter")
            await self.ack(claim)
            return
        await self._call("dead-lettering", message.channel.basic_reject, message.delivery_tag,
                         requeue=False)  # fmt: skip

    async def sweep(self) -> int:
        return 0  # the broker requeues the messages of a closed channel itself

    async def put(self, payload: bytes) -> str:
        channel = await self._ch()
        item_id = envelope.new_id()
        props = Basic.Properties(
            message_id=item_id, delivery_mode=2,
            timestamp=datetime.datetime.now(datetime.UTC),
        )  # fmt: skip
        confirm = await self._call("publishing", channel.basic_publish, payload,
                                   routing_key=self._queue, properties=props)  # fmt: skip
        if not isinstance(confirm, Basic.Ack):
            raise BrokerUnavailable(f"{self.where}: the broker did not confirm the message")
        return item_id

    async def aclose(self) -> None:
        if self._conn is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._conn.close()
            except (amqp_errors.AMQPError, OSError, TimeoutError):
                pass
