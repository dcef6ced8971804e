"""The RabbitMQ adapter against a real rabbitmq-server with the management plugin.

The management API's numbers lag by its statistics interval (1 s in these tests):
tests poll until the numbers settle instead of sleeping blindly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiormq
import grpc
import pytest

from scaler.brokers.rabbitmq.client import RabbitAdapter
from scaler.errors import (
    BrokerAuthError,
    BrokerPermissionError,
    BrokerUnavailable,
    MetadataError,
    QueueNotFound,
    UnsupportedState,
)
from scaler.registry import Triggers
from tests.brokers import RabbitMQProcess
from tests.conftest import ServerFactory, evaluate, metrics_request, ref

SETTLE_SECONDS = 20.0


@pytest.fixture
async def triggers() -> AsyncIterator[Triggers]:
    t = Triggers({"rabbitmq": RabbitAdapter(timeout=3)})
    yield t
    await t.aclose()


@pytest.fixture
async def amqp(rabbitmq: RabbitMQProcess) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    """A set-up channel on the default vhost; every queue it declares is deleted after."""
    connection = await aiormq.connect(rabbitmq.amqp_url())
    channel = await connection.channel()
    declared: list[str] = []
    original = channel.queue_declare

    async def declare(name: str = "", **kw: Any) -> Any:
        declared.append(name)
        return await original(name, **kw)

    channel.queue_declare = declare  # type: ignore[method-assign]
    yield channel
    cleanup = await connection.channel()
    for name in declared:
        await cleanup.queue_delete(name)
    await connection.close()


async def publish(
    channel: aiormq.abc.AbstractChannel, queue: str, count: int, *, persistent: bool = False
) -> None:
    properties = aiormq.spec.Basic.Properties(delivery_mode=2 if persistent else 1)
    for i in range(count):  # aiormq channels wait for the broker's confirm
        await channel.basic_publish(f"m{i}".encode(), routing_key=queue, properties=properties)


def rabbit(host: str, queue: str, **extra: str) -> dict[str, str]:
    return {"scalerType": "rabbitmq", "host": host, "queueName": queue, **extra}


async def settle(read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool]) -> Any:
    """Poll ``read`` until ``ok`` holds (the stats interval is 1 s here)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await read()
            if ok(last):
                return last
        except BrokerUnavailable as exc:  # "no statistics yet" while the queue is new
            last = exc
        await asyncio.sleep(0.2)
    raise AssertionError(f"did not settle within {SETTLE_SECONDS}s; last: {last!r}")


async def test_queue_length_over_amqp_and_http(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    await amqp.queue_declare("jobs")
    await publish(amqp, "jobs", 7)
    # AMQP asks the broker directly: exact at once, and again after more arrive.
    assert await evaluate(triggers, rabbit(rabbitmq.amqp_url(), "jobs")) == (7.0, True)
    await publish(amqp, "jobs", 1)
    assert await evaluate(triggers, rabbit(rabbitmq.amqp_url(), "jobs")) == (8.0, True)
    http = rabbit(rabbitmq.http_url(), "jobs", mode="QueueLength", value="5")
    assert await settle(lambda: evaluate(triggers, http), lambda r: r == (8.0, True))


async def test_ready_versus_unacknowledged(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    await amqp.queue_declare("held")
    await publish(amqp, "held", 5)
    consumer = await (await aiormq.connect(rabbitmq.amqp_url())).channel()
    await consumer.basic_qos(prefetch_count=2)
    await consumer.basic_consume("held", lambda message: None, no_ack=False)  # never acks
    try:
        http = rabbit(rabbitmq.http_url(), "held")
        total = await settle(lambda: evaluate(triggers, http), lambda r: r[0] == 5)
        assert total == (5.0, True)  # ready + unacknowledged, as KEDA's default
        ready_only = {**http, "excludeUnacknowledged": "true"}
        assert await settle(lambda: evaluate(triggers, ready_only), lambda r: r[0] == 3)
        amqp_count = await evaluate(triggers, rabbit(rabbitmq.amqp_url(), "held"))
        assert amqp_count == (3.0, True)  # a passive declare counts ready messages only
    finally:
        await consumer.connection.close()


async def test_rates_modes_read_the_management_api(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    await amqp.queue_declare("flow")
    consumer = await (await aiormq.connect(rabbitmq.amqp_url())).channel()
    await consumer.basic_consume("flow", lambda message: None, no_ack=True)
    stop = asyncio.Event()

    async def producer() -> None:
        while not stop.is_set():
            await publish(amqp, "flow", 5)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(producer())
    host = rabbitmq.http_url()
    try:
        rate = await settle(
            lambda: evaluate(triggers, rabbit(host, "flow", mode="MessageRate", value="10")),
            lambda r: r[0] > 0,
        )
        assert rate[1] is True  # publishing faster than activationValue 0
        deliver = await settle(
            lambda: evaluate(triggers, rabbit(host, "flow", mode="DeliverGetRate", value="10")),
            lambda r: r[0] > 0,
        )
        assert deliver[1] is True
        ratio = await settle(
            lambda: evaluate(
                triggers, rabbit(host, "flow", mode="PublishedToDeliveredRatio", value="1")
            ),
            lambda r: r[0] > 0,
        )
        assert 0.5 < ratio[0] < 2.0  # every message published is delivered
        eta, _ = await evaluate(
            triggers, rabbit(host, "flow", mode="ExpectedQueueConsumptionTime", value="5")
        )
        assert eta >= 0
    finally:
        stop.set()
        await task
        await consumer.connection.close()


async def test_regex_across_queues_with_each_operation(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    for name, count in (("rx-a", 1), ("rx-b", 2), ("rx-c", 4), ("other", 8)):
        await amqp.queue_declare(name)
        await publish(amqp, name, count)
    base = rabbit(rabbitmq.http_url(), "^rx-.*", useRegex="true")
    expected = {"sum": 7.0, "avg": 2.0, "max": 4.0}  # avg rounds 7/3 down, as KEDA
    for operation, value in expected.items():
        got = await settle(
            lambda op=operation: evaluate(triggers, {**base, "operation": op}),  # type: ignore[misc]
            lambda r, v=value: r[0] == v,  # type: ignore[misc]
        )
        assert got == (value, True)
    with pytest.raises(UnsupportedState, match="pageSize"):
        await evaluate(triggers, {**base, "pageSize": "2"})  # 3 matches, 2 pages


async def test_non_default_vhost_and_names_that_need_escaping(
    triggers: Triggers, rabbitmq: RabbitMQProcess
) -> None:
    vhost = "team/one"
    rabbitmq.api("PUT", "/api/vhosts/team%2Fone")
    rabbitmq.api(
        "PUT", "/api/permissions/team%2Fone/guest", {"configure": ".*", "write": ".*", "read": ".*"}
    )
    connection = await aiormq.connect(rabbitmq.amqp_url(vhost))
    channel = await connection.channel()
    queue = "orders #1 eu/west"
    await channel.queue_declare(queue)
    await publish(channel, queue, 3)
    try:
        by_url = rabbit(rabbitmq.amqp_url(vhost), queue)
        assert await evaluate(triggers, by_url) == (3.0, True)
        by_name = rabbit(rabbitmq.amqp_url(), queue, vhostName=vhost)
        assert await evaluate(triggers, by_name) == (3.0, True)
        http = rabbit(rabbitmq.http_url(), queue, vhostName=vhost)
        assert await settle(lambda: evaluate(triggers, http), lambda r: r[0] == 3)
        http_path = rabbit(rabbitmq.http_url(vhost), queue)  # vhost as the URL's last segment
        assert await evaluate(triggers, http_path) == (3.0, True)
        # The same name in the default vhost does not exist.
        with pytest.raises(QueueNotFound):
            await evaluate(triggers, rabbit(rabbitmq.http_url(), queue))
        trigger = triggers.parse(http)
        assert trigger.metric_name == "rabbitmq-orders+-231+eu-2Fwest"  # KEDA's naming
    finally:
        await channel.queue_delete(queue)
        await connection.close()
        rabbitmq.api("DELETE", "/api/vhosts/team%2Fone")


async def test_missing_queue_does_not_poison_the_shared_connection(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    await amqp.queue_declare("present")
    await publish(amqp, "present", 2)
    host = rabbitmq.amqp_url()
    results = await asyncio.gather(
        evaluate(triggers, rabbit(host, "absent")),
        evaluate(triggers, rabbit(host, "present")),
        evaluate(triggers, rabbit(host, "absent")),
        evaluate(triggers, rabbit(host, "present")),
        return_exceptions=True,
    )
    assert isinstance(results[0], QueueNotFound)
    assert isinstance(results[2], QueueNotFound)
    assert results[1] == results[3] == (2.0, True)
    assert await evaluate(triggers, rabbit(host, "present")) == (2.0, True)
    adapter = triggers.adapter_for(triggers.parse(rabbit(host, "present")))
    assert isinstance(adapter, RabbitAdapter)
    assert len(adapter._amqp) == 1  # one shared connection, still open
    assert not (
        await adapter._connection(triggers.parse(rabbit(host, "present")).query.server)
    ).is_closed
    with pytest.raises(QueueNotFound, match=r'queue "absent" .* does not exist'):
        await evaluate(triggers, rabbit(rabbitmq.http_url(), "absent"))


async def test_refused_credentials(triggers: Triggers, rabbitmq: RabbitMQProcess) -> None:
    bad_amqp = rabbitmq.amqp_url().replace("guest:guest", "guest:wrong-secret")
    with pytest.raises(BrokerAuthError) as err:
        await evaluate(triggers, rabbit(bad_amqp, "jobs"))
    assert "wrong-secret" not in str(err.value)
    bad_http = rabbitmq.http_url().replace("guest:guest", "guest:wrong-secret")
    with pytest.raises(BrokerAuthError) as err:
        await evaluate(triggers, rabbit(bad_http, "jobs"))
    assert "wrong-secret" not in str(err.value)
    # usernameFromEnv / passwordFromEnv replace the URL's credentials
    fixed = rabbit(bad_http.replace("guest:wrong-secret@", ""), "jobs",
                   usernameFromEnv="guest", passwordFromEnv="wrong-again")  # fmt: skip
    with pytest.raises(BrokerAuthError):
        await evaluate(triggers, fixed)


async def test_vhost_and_permission_refusals_are_named(
    triggers: Triggers, rabbitmq: RabbitMQProcess
) -> None:
    rabbitmq.api("PUT", "/api/users/no-perms", {"password": "no-perms-pw", "tags": ""})
    try:
        missing_vhost = rabbit(rabbitmq.amqp_url("no-such-vhost"), "q")
        with pytest.raises(BrokerPermissionError, match="refused to open the vhost"):
            await evaluate(triggers, missing_vhost)
        no_perms = f"amqp://no-perms:no-perms-pw@127.0.0.1:{rabbitmq.amqp_port}/"
        with pytest.raises(BrokerPermissionError, match="no permissions"):
            await evaluate(triggers, rabbit(no_perms, "q"))
        no_tag = f"http://no-perms:no-perms-pw@127.0.0.1:{rabbitmq.http_port}"
        with pytest.raises(BrokerAuthError, match="monitoring or management tag") as err:
            await evaluate(triggers, rabbit(no_tag, "q"))
        assert "no-perms-pw" not in str(err.value)
    finally:
        rabbitmq.api("DELETE", "/api/users/no-perms")


# It stops and restarts the broker (an Erlang VM: about 15 s here, much longer on a
# loaded machine); the waits inside have deadlines of their own.
@pytest.mark.timeout(300)
async def test_broker_down_gives_errors_then_values_when_back(
    start_server: ServerFactory, rabbitmq: RabbitMQProcess
) -> None:
    connection = await aiormq.connect(rabbitmq.amqp_url())
    channel = await connection.channel()
    await channel.queue_declare("survivor", durable=True)
    await publish(channel, "survivor", 4, persistent=True)
    await connection.close()
    amqp_meta = rabbit(rabbitmq.amqp_url(), "survivor")
    http_meta = rabbit(rabbitmq.http_url(), "survivor")
    async with start_server(cache_ttl=0.0, read_timeout=2.0) as s:
        reply = await s.stub.GetMetrics(metrics_request(amqp_meta))
        assert reply.metricValues[0].metricValue == 4
        await asyncio.to_thread(rabbitmq.stop, graceful=True)
        for meta in (amqp_meta, http_meta):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.stub.GetMetrics(metrics_request(meta))
            assert err.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            assert "guest" not in (err.value.details() or "")
        await asyncio.to_thread(rabbitmq.start)
        # A durable queue of confirmed persistent messages survives the restart.
        for meta in (amqp_meta, http_meta):

            async def read(m: dict[str, str] = meta) -> Any:
                try:
                    return (await s.stub.GetMetrics(metrics_request(m))).metricValues[0].metricValue
                except grpc.aio.AioRpcError as exc:
                    return exc.code()

            assert await settle(read, lambda v: v == 4) == 4
        assert (await s.stub.IsActive(ref(amqp_meta))).result is True
    cleanup = await aiormq.connect(rabbitmq.amqp_url())
    await (await cleanup.channel()).queue_delete("survivor")
    await cleanup.close()


async def test_tls_amqps_and_https_with_unsafe_ssl(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    await amqp.queue_declare("secure")
    await publish(amqp, "secure", 2)
    amqps = f"amqps://guest:guest@localhost:{rabbitmq.amqps_port}/"
    https = f"https://guest:guest@localhost:{rabbitmq.https_port}"
    # The test CA is not in the system store: only unsafeSsl (no verification) connects.
    assert await evaluate(triggers, rabbit(amqps, "secure", unsafeSsl="true")) == (2.0, True)
    assert await settle(
        lambda: evaluate(triggers, rabbit(https, "secure", unsafeSsl="true")), lambda r: r[0] == 2
    )
    for host in (amqps, https):
        with pytest.raises(BrokerUnavailable, match=r"(?i)certificate"):
            await evaluate(triggers, rabbit(host, "secure"))


async def test_age_is_the_head_messages_timestamp(
    triggers: Triggers, rabbitmq: RabbitMQProcess, amqp: Any
) -> None:
    """measure: age reads the management API's head_message_timestamp: the timestamp
    property (whole seconds) the publisher set on the message at the queue's head."""
    import datetime as dt

    await amqp.queue_declare("stamped")
    await amqp.queue_declare("unstamped")
    start = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)
    for offset in (0, 10, 20):
        properties = aiormq.spec.Basic.Properties(timestamp=start + dt.timedelta(seconds=offset))
        await amqp.basic_publish(b"x", routing_key="stamped", properties=properties)
    await publish(amqp, "unstamped", 2)
    http = rabbitmq.http_url()
    md = rabbit(http, "stamped", measure="age", targetAge="60", activationAge="30")
    head = start.timestamp()
    assert await settle(lambda: evaluate(triggers, md, now=head + 95), lambda r: r == (95.0, True))
    trigger = triggers.parse(md)
    sample = await triggers.adapter_for(trigger).read(trigger.query)
    assert (sample.ready, sample.oldest) == (3, head)
    # the head taken and acknowledged: the next message's timestamp
    got = await amqp.basic_get("stamped", no_ack=True)
    assert got.body == b"x"
    assert await settle(lambda: evaluate(triggers, md, now=head + 95), lambda r: r == (85.0, True))
    # messages without a timestamp property: refused with the remedy, never a 0
    unstamped = {**md, "queueName": "unstamped"}
    with pytest.raises(UnsupportedState, match=r"no timestamp property.*message_timestamp"):
        await settle(lambda: evaluate(triggers, unstamped), lambda r: False)
    # AMQP cannot tell a message's time: refused when the trigger is read
    with pytest.raises(MetadataError, match="AMQP reports no message times"):
        triggers.parse({**md, "host": rabbitmq.amqp_url()})
