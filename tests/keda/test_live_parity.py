"""Live differential: KEDA's built-in scalers and KEDA's external scaler pointed at
us, asked the same question on the same real brokers (DESIGN §4, issue 9).

``livediff`` (tests/keda/cmd/livediff) builds both from one
``scalersconfig.ScalerConfig``, as KEDA's operator does for a ScaledJob trigger, and
calls ``GetMetricSpecForScaling`` then ``GetMetricsAndActivity``. They must agree on
the metric name, target, value and activity, or both fail. Each case where we differ
on purpose is listed in ``DIFFERENCES`` with its reason, and the README's table
"Where we differ from KEDA" (docs/differences.md) names the same case ids.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiormq
import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.registry import Triggers
from tests.brokers import MotoServer, RabbitMQProcess, RedisCluster, RedisProcess, RedisSentinel
from tests.conftest import REDIS_PASSWORD, ServerFactory
from tests.integration.test_sqs import fill
from tests.kedago import tools_dir
from tests.kubeobjects import FixedObjects

pytestmark = [pytest.mark.keda, pytest.mark.usefixtures("keda_tools")]

DOCS = Path(__file__).parents[2] / "README.md"

# Case id -> why we answer differently from KEDA's built-in scaler, on purpose.
DIFFERENCES = {
    "rabbitmq-http-space-in-name": "KEDA escapes the queue name with url.QueryEscape, so a "
    "space becomes '+' and the management API answers 404; we escape the path segment",
    "redis-list-target-0": "listLength 0 makes KEDA divide by 0 (no Jobs, no error); we refuse "
    "it with INVALID_ARGUMENT",
    "rabbitmq-target-below-milli": "KEDA keeps 3 decimals of a target, so 0.0001 becomes 0 and "
    "no Job is ever created; we refuse it",
    "rabbitmq-http-timeout-wraps": "KEDA multiplies the milliseconds into an int64 of "
    "nanoseconds, which wraps past 292 years; we refuse the value",
}

Case = dict[str, Any]


def case(ident: str, kind: str, metadata: dict[str, str], **extra: Any) -> Case:
    return {"id": ident, "type": kind, "metadata": metadata, **extra}


def redis_cases(redis: RedisProcess, auth: RedisProcess) -> list[Case]:
    a = {"address": redis.address}
    lst = {**a, "listName": "jobs"}
    stm = {**a, "stream": "events"}
    host, port = redis.address.rsplit(":", 1)
    return [
        case("redis-list-default", "redis", lst),
        case("redis-list-target", "redis", {**lst, "listLength": "2"}),
        case("redis-list-inactive", "redis", {**lst, "activationListLength": "7"}),
        case("redis-list-active", "redis", {**lst, "activationListLength": "6"}),
        case("redis-list-missing-key", "redis", {**a, "listName": "nothing-here"}),
        case("redis-set", "redis", {**a, "listName": "a-set"}),
        case("redis-zset", "redis", {**a, "listName": "a-zset"}),
        case("redis-hash", "redis", {**a, "listName": "a-hash"}),
        case("redis-string-is-an-error", "redis", {**a, "listName": "a-string"}),
        case("redis-database-index", "redis", {**lst, "databaseIndex": "1"}),
        case("redis-host-port", "redis", {"host": host, "port": port, "listName": "jobs"}),
        case("redis-trimmed-values", "redis",
             {"address": f" {redis.address} ", "listName": " jobs ", "listLength": " 3 "}),
        case("redis-listlength-plus", "redis", {**lst, "listLength": "+5"}),
        case("redis-listlength-leading-zero", "redis", {**lst, "listLength": "007"}),
        case("redis-listlength-float", "redis", {**lst, "listLength": "5.0"}),
        case("redis-listlength-word", "redis", {**lst, "listLength": "five"}),
        case("redis-listlength-huge", "redis", {**lst, "listLength": "9223372036854775808"}),
        case("redis-list-target-0", "redis", {**lst, "listLength": "0"}),
        case("redis-activation-bad", "redis", {**lst, "activationListLength": "x"}),
        case("redis-no-listname", "redis", dict(a)),
        case("redis-unreachable", "redis", {"address": "127.0.0.1:1", "listName": "jobs"}),
        case("redis-enabletls-bad", "redis", {**lst, "enableTLS": "maybe"}),
        case("redis-password-env", "redis",
             {"address": auth.address, "listName": "jobs", "passwordFromEnv": "REDIS_PW"},
             resolvedEnv={"REDIS_PW": REDIS_PASSWORD}),
        case("redis-password-plain", "redis",
             {"address": auth.address, "listName": "jobs", "password": REDIS_PASSWORD}),
        case("redis-password-wrong", "redis",
             {"address": auth.address, "listName": "jobs", "password": "wrong"}),
        case("redis-password-missing", "redis", {"address": auth.address, "listName": "jobs"}),
        case("redis-username-password", "redis",
             {"address": auth.address, "listName": "jobs", "username": "default",
              "password": REDIS_PASSWORD}),
        # streams: length, pending and lag modes
        case("redis-streams-xlen", "redis-streams", {**stm, "streamLength": "2"}),
        case("redis-streams-xlen-default", "redis-streams", dict(stm)),
        case("redis-streams-pending", "redis-streams",
             {**stm, "consumerGroup": "workers", "pendingEntriesCount": "1"}),
        case("redis-streams-pending-default", "redis-streams", {**stm, "consumerGroup": "workers"}),
        case("redis-streams-lag", "redis-streams",
             {**stm, "consumerGroup": "workers", "lagCount": "2"}),
        case("redis-streams-lag-missing-group", "redis-streams",
             {**stm, "consumerGroup": "nobody", "lagCount": "2"}),
        case("redis-streams-lag-missing-stream", "redis-streams",
             {**a, "stream": "no-stream", "consumerGroup": "workers", "lagCount": "2"}),
        case("redis-streams-activation", "redis-streams", {**stm, "activationLagCount": "6"}),
        case("redis-streams-activation-below", "redis-streams",
             {**stm, "activationLagCount": "5"}),
        case("redis-streams-missing-stream", "redis-streams", {**a, "stream": "no-stream"}),
        case("redis-streams-on-a-list", "redis-streams", {**a, "stream": "jobs"}),
        case("redis-streams-no-stream", "redis-streams", dict(a)),
        case("redis-streams-bad-number", "redis-streams", {**stm, "streamLength": "1.5"}),
    ]  # fmt: skip


def redis_topology_cases(cluster: RedisCluster, sentinel: RedisSentinel) -> list[Case]:
    hosts = ",".join(n.address.rsplit(":", 1)[0] for n in cluster.nodes)
    ports = ", ".join(n.address.rsplit(":", 1)[1] for n in cluster.nodes)
    auth = {"password": REDIS_PASSWORD}
    return [
        case("redis-cluster-list", "redis-cluster",
             {"addresses": cluster.addresses, "listName": "jobs", **auth}),
        case("redis-cluster-hosts-ports", "redis-cluster",
             {"hosts": hosts, "ports": ports, "listName": "jobs", **auth}),
        case("redis-cluster-streams", "redis-cluster-streams",
             {"addresses": cluster.addresses, "stream": "events", **auth}),
        case("redis-cluster-wrong-password", "redis-cluster",
             {"addresses": cluster.addresses, "listName": "jobs", "password": "nope"}),
        case("redis-sentinel-list", "redis-sentinel",
             {"addresses": sentinel.address, "listName": "jobs",
              "sentinelMaster": RedisSentinel.MASTER}),
        case("redis-sentinel-streams", "redis-sentinel-streams",
             {"addresses": sentinel.address, "stream": "events",
              "sentinelMaster": RedisSentinel.MASTER}),
        case("redis-sentinel-unknown-master", "redis-sentinel",
             {"addresses": sentinel.address, "listName": "jobs", "sentinelMaster": "nope"}),
    ]  # fmt: skip


def sqs_cases(moto: MotoServer, url: str) -> list[Case]:
    creds = {"awsAccessKeyIDFromEnv": "AWS_ID", "awsSecretAccessKeyFromEnv": "AWS_SECRET"}
    env = {"AWS_ID": "AKIDLIVEDIFF", "AWS_SECRET": "livediff-secret"}
    base = {"queueURL": url, "awsRegion": "us-east-1", "awsEndpoint": moto.endpoint, **creds}

    def sqs(ident: str, **kv: str) -> Case:
        return case(ident, "aws-sqs-queue", {**base, **kv}, resolvedEnv=env)

    missing = url.rsplit("/", 1)[0] + "/no-such-queue"
    return [
        sqs("sqs-default"),
        sqs("sqs-no-in-flight", scaleOnInFlight="false"),
        sqs("sqs-delayed", scaleOnDelayed="true"),
        sqs("sqs-all", scaleOnInFlight="true", scaleOnDelayed="true"),
        sqs("sqs-target", queueLength="2", activationQueueLength="4"),
        sqs("sqs-inactive", activationQueueLength="5"),
        sqs("sqs-trimmed-bool", scaleOnInFlight=" false "),
        sqs("sqs-bool-bad", scaleOnInFlight="yes"),
        sqs("sqs-queuelength-float", queueLength="5.0"),
        sqs("sqs-missing-queue", queueURL=missing),
        sqs("sqs-bad-url-path", queueURL=url + "/extra"),
        case("sqs-no-region", "aws-sqs-queue",
             {k: v for k, v in base.items() if k != "awsRegion"}, resolvedEnv=env),
    ]  # fmt: skip


def rabbit_cases(rabbitmq: RabbitMQProcess) -> list[Case]:
    amqp, http = rabbitmq.amqp_url(), rabbitmq.http_url("/")

    def rmq(ident: str, host: str, queue: str = "work", **kv: str) -> Case:
        return case(ident, "rabbitmq", {"host": host, "queueName": queue, **kv})

    return [
        rmq("rabbitmq-amqp-default", amqp),
        rmq("rabbitmq-amqp-queuelength", amqp, mode="QueueLength", value="3"),
        rmq("rabbitmq-amqp-legacy-queuelength", amqp, queueLength="4"),
        rmq("rabbitmq-amqp-activation", amqp, mode="QueueLength", value="3",
            activationValue="9"),
        rmq("rabbitmq-amqp-missing-queue", amqp, "no-such-queue"),
        rmq("rabbitmq-amqp-rate-mode", amqp, mode="MessageRate", value="5"),
        rmq("rabbitmq-amqp-timeout", amqp, timeout="1000"),  # KEDA ignores it here
        rmq("rabbitmq-amqp-timeout-with-mode", amqp, timeout="1000", mode="QueueLength",
            value="5"),
        rmq("rabbitmq-amqp-exclude-unacked", amqp, excludeUnacknowledged="true"),
        rmq("rabbitmq-http-default", http),
        rmq("rabbitmq-http-queuelength", http, mode="QueueLength", value="4"),
        rmq("rabbitmq-http-exclude-unacked", http, mode="QueueLength", value="4",
            excludeUnacknowledged="true"),
        rmq("rabbitmq-http-timeout", http, timeout="5s"),
        # KEDA reads a time.Duration: ParseDuration, then strconv.ParseInt milliseconds.
        rmq("rabbitmq-http-timeout-plus-millis", http, timeout="+3000"),
        rmq("rabbitmq-http-timeout-go-fraction", http, timeout="1.s"),
        rmq("rabbitmq-http-timeout-negative", http, timeout="-5s"),
        rmq("rabbitmq-http-timeout-past-int64", http, timeout="10000000000000000000"),
        rmq("rabbitmq-http-timeout-wraps", http, timeout="9223372036855"),
        rmq("rabbitmq-http-idle-message-rate", http, "idle", mode="MessageRate", value="2"),
        rmq("rabbitmq-http-idle-deliver-rate", http, "idle", mode="DeliverGetRate", value="2"),
        rmq("rabbitmq-http-idle-ratio", http, "idle", mode="PublishedToDeliveredRatio",
            value="2"),
        rmq("rabbitmq-http-idle-consumption", http, "idle",
            mode="ExpectedQueueConsumptionTime", value="2"),
        rmq("rabbitmq-http-regex-sum", http, "^rx-.*", useRegex="true"),
        rmq("rabbitmq-http-regex-avg", http, "^rx-.*", useRegex="true", operation="avg"),
        rmq("rabbitmq-http-regex-max", http, "^rx-.*", useRegex="true", operation="max"),
        rmq("rabbitmq-http-regex-none", http, "^nothing-.*", useRegex="true"),
        rmq("rabbitmq-http-missing-queue", http, "no-such-queue"),
        rmq("rabbitmq-http-vhost-name", rabbitmq.http_url(""), vhostName="/"),
        rmq("rabbitmq-http-space-in-name", http, "with space"),
        rmq("rabbitmq-mode-without-value", http, mode="QueueLength"),
        rmq("rabbitmq-bad-mode", http, mode="Fastest", value="2"),
        rmq("rabbitmq-bad-scheme", "ftp://127.0.0.1/", "work"),
        rmq("rabbitmq-value-plus", http, mode="QueueLength", value="+2"),
        rmq("rabbitmq-target-below-milli", http, mode="QueueLength", value="0.0001"),
        rmq("rabbitmq-fractional-target", http, mode="QueueLength", value="2.5"),
        case("rabbitmq-host-from-env", "rabbitmq", {"hostFromEnv": "RMQ", "queueName": "work"},
             resolvedEnv={"RMQ": http}),
        rmq("rabbitmq-wrong-password", http.replace(f":{rabbitmq.PASSWORD}@", ":nope@")),
    ]  # fmt: skip


async def prepare_redis(redis: RedisProcess, auth: RedisProcess) -> None:
    r = redis.client()
    r.rpush("jobs", *range(7))
    r.sadd("a-set", *range(4))
    r.zadd("a-zset", {f"m{i}": i for i in range(3)})
    r.hset("a-hash", mapping={f"f{i}": i for i in range(5)})
    r.set("a-string", "x")
    redis.client(db=1).rpush("jobs", *range(11))
    for i in range(6):
        r.xadd("events", {"n": str(i)})
    r.xgroup_create("events", "workers", id="0")
    r.xreadgroup("workers", "w1", {"events": ">"}, count=3)  # 3 pending, lag 3
    auth.client().rpush("jobs", *range(2))


@pytest.fixture
async def held_channel(rabbitmq: RabbitMQProcess) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    connection = await aiormq.connect(rabbitmq.amqp_url())
    channel = await connection.channel()
    try:
        yield channel
    finally:
        await connection.close()


async def prepare_rabbitmq(rabbitmq: RabbitMQProcess, channel: aiormq.abc.AbstractChannel) -> None:
    queues = {"work": 10, "idle": 0, "rx-a": 2, "rx-b": 5, "rx-c": 0, "with space": 3}
    for name, count in queues.items():
        await channel.queue_delete(name)
        await channel.queue_declare(name)
        for i in range(count):
            await channel.basic_publish(f"m{i}".encode(), routing_key=name)
    # 2 of work's 10 messages delivered and never acknowledged: 8 ready, 2 unacked.
    consumer = await channel.connection.channel()
    await consumer.basic_qos(prefetch_count=2)
    await consumer.basic_consume("work", lambda message: None, no_ack=False)
    # The management API's numbers lag by its statistics interval: wait until they
    # show what AMQP did, so both scalers read settled numbers.
    want = {name: (count, 2 if name == "work" else 0) for name, count in queues.items()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        listed = rabbitmq.api(
            "GET", "/api/queues/%2F?columns=name,messages,messages_unacknowledged"
        )
        seen = {
            q["name"]: (q.get("messages"), q.get("messages_unacknowledged"))
            for q in listed  # type: ignore[union-attr]
        }
        if all(seen.get(name) == counts for name, counts in want.items()):
            return
        assert loop.time() < deadline, f"management API never settled: {seen}"
        await asyncio.sleep(0.2)  # polling a condition, not waiting for time to pass


async def livediff(cases: list[Case], address: str) -> dict[str, dict[str, Any]]:
    payload = "".join(json.dumps({**c, "scalerAddress": address}) + "\n" for c in cases)
    proc = await asyncio.create_subprocess_exec(
        str(tools_dir() / "livediff"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(payload.encode()), 600)
    assert proc.returncode == 0, err.decode()[-4000:]
    answers = [json.loads(line) for line in out.decode().splitlines()]
    assert [a["id"] for a in answers] == [c["id"] for c in cases]
    return {a["id"]: a for a in answers}


def verdict(result: dict[str, Any]) -> Any:
    """What must agree: an error (either way), or name, target, value and activity."""
    if result.get("error"):
        return "error"
    return (result["metricName"], result["target"], result["value"], result["active"])


@pytest.mark.timeout(900)
async def test_keda_builtin_and_external_scalers_agree(
    start_server: ServerFactory,
    redis_db: RedisProcess,
    redis_password_server: RedisProcess,
    redis_cluster: RedisCluster,
    redis_sentinel: RedisSentinel,
    moto: MotoServer,
    rabbitmq: RabbitMQProcess,
    held_channel: aiormq.abc.AbstractChannel,
) -> None:
    redis_password_server.client().flushall()
    await prepare_redis(redis_db, redis_password_server)
    cluster = redis_cluster.client()
    cluster.delete("jobs", "events")
    cluster.rpush("jobs", *range(9))
    for i in range(4):
        cluster.xadd("events", {"n": str(i)})
    master = redis_sentinel.master.client()
    master.delete("jobs", "events")
    master.rpush("jobs", *range(6))
    master.xadd("events", {"n": "1"})
    url = fill(moto, "livediff", visible=3, in_flight=2, delayed=4)
    await prepare_rabbitmq(rabbitmq, held_channel)

    cases = [
        *redis_cases(redis_db, redis_password_server),
        *redis_topology_cases(redis_cluster, redis_sentinel),
        *sqs_cases(moto, url),
        *rabbit_cases(rabbitmq),
    ]
    assert len(cases) >= 60
    # KEDA's built-in scaler calls any endpoint and assumes any role it is given; ours
    # only what its operator lists (see docs/security.md): list the emulator.
    async with start_server(allow_aws_endpoints=moto.endpoint, allow_aws_roles="arn:*") as s:
        answers = await livediff(cases, s.address)

    disagreements = []
    for c in cases:
        a = answers[c["id"]]
        same = verdict(a["builtin"]) == verdict(a["external"])
        if same and c["id"] in DIFFERENCES:
            disagreements.append(f"{c['id']}: listed as a difference but agrees now: {a}")
        elif not same and c["id"] not in DIFFERENCES:
            disagreements.append(f"{c['id']}: KEDA {a['builtin']} | ours {a['external']}")
    agree = sum(verdict(a["builtin"]) == verdict(a["external"]) for a in answers.values())
    errors = sum(verdict(a["builtin"]) == "error" for a in answers.values())
    print(f"\n{len(cases)} live cases: {agree} agree ({errors} of them errors on both sides), "
          f"{len(cases) - agree} listed differences")  # fmt: skip
    # The cases must exercise reads, not only refusals.
    assert len(cases) - errors >= 35
    assert not disagreements, "\n".join(disagreements)


def auth_cases(
    auth: RedisProcess, rabbitmq: RabbitMQProcess, moto: MotoServer, url: str
) -> list[Case]:
    """Triggers whose credentials or target come from a TriggerAuthentication: KEDA's
    built-in scaler gets them as authParams, ours through its authenticationRef. Each
    case is its own ScaledJob (name = id), so the resolver finds its trigger."""
    host, port = auth.address.rsplit(":", 1)
    http = rabbitmq.http_url("/")
    no_user = http.replace(f"{rabbitmq.USER}:{rabbitmq.PASSWORD}@", "nobody:wrong@")
    aws = {"awsAccessKeyID": "AKIDAUTH", "awsSecretAccessKey": "auth-secret"}
    sqs = {"queueURL": url, "awsEndpoint": moto.endpoint}

    def c(ident: str, kind: str, metadata: dict[str, str], params: dict[str, str],
          **extra: Any) -> Case:  # fmt: skip
        return case(ident, kind, metadata, authParams=params, name=ident, **extra)

    lst = {"listName": "jobs"}
    return [
        c("auth-redis-password", "redis", {"address": auth.address, **lst},
          {"password": REDIS_PASSWORD}),
        c("auth-redis-metadata-password-wins", "redis",
          {"address": auth.address, "password": "wrong", **lst}, {"password": REDIS_PASSWORD}),
        c("auth-redis-env-password-wins", "redis",
          {"address": auth.address, "passwordFromEnv": "PW", **lst}, {"password": REDIS_PASSWORD},
          resolvedEnv={"PW": "wrong"}),
        c("auth-redis-address-beats-env", "redis", {"addressFromEnv": "ADDR", **lst},
          {"address": auth.address, "password": REDIS_PASSWORD},
          resolvedEnv={"ADDR": "127.0.0.1:1"}),
        c("auth-redis-host-port", "redis", dict(lst),
          {"host": host, "port": port, "password": REDIS_PASSWORD}),
        c("auth-redis-env-port-wins", "redis", {"hostFromEnv": "H", "portFromEnv": "P", **lst},
          {"host": host, "port": "1", "password": REDIS_PASSWORD},
          resolvedEnv={"H": host, "P": port}),
        c("auth-redis-username", "redis", {"address": auth.address, **lst},
          {"username": "default", "password": REDIS_PASSWORD}),
        c("auth-redis-wrong-password", "redis", {"address": auth.address, **lst},
          {"password": "wrong"}),
        c("auth-rabbitmq-host", "rabbitmq", {"queueName": "work"}, {"host": http}),
        c("auth-rabbitmq-host-beats-env", "rabbitmq", {"hostFromEnv": "RMQ", "queueName": "work"},
          {"host": http}, resolvedEnv={"RMQ": no_user}),
        c("auth-rabbitmq-metadata-host-wins", "rabbitmq", {"host": no_user, "queueName": "work"},
          {"host": http}),
        c("auth-rabbitmq-credentials", "rabbitmq", {"host": no_user, "queueName": "work"},
          {"username": rabbitmq.USER, "password": rabbitmq.PASSWORD}),
        c("auth-rabbitmq-credentials-beat-env", "rabbitmq",
          {"host": no_user, "queueName": "work", "usernameFromEnv": "U", "passwordFromEnv": "P"},
          {"username": rabbitmq.USER, "password": rabbitmq.PASSWORD},
          resolvedEnv={"U": "nobody", "P": "wrong"}),
        c("auth-rabbitmq-vhost", "rabbitmq", {"host": rabbitmq.http_url(""), "queueName": "work"},
          {"vhostName": "/"}),
        c("auth-sqs-keys", "aws-sqs-queue", {**sqs, "awsRegion": "us-east-1"}, aws),
        c("auth-sqs-region", "aws-sqs-queue", dict(sqs), {**aws, "awsRegion": "us-east-1"}),
        c("auth-sqs-keys-replace-env", "aws-sqs-queue",
          {**sqs, "awsRegion": "us-east-1", "awsAccessKeyIDFromEnv": "ID"}, aws,
          resolvedEnv={"ID": "AKIDENV"}),
        c("auth-sqs-no-secret", "aws-sqs-queue", {**sqs, "awsRegion": "us-east-1"},
          {"awsAccessKeyID": "AKIDAUTH"}),
    ]  # fmt: skip


@pytest.mark.timeout(600)
async def test_trigger_authentication_reaches_us_as_it_reaches_kedas_scaler(
    start_server: ServerFactory,
    redis_password_server: RedisProcess,
    moto: MotoServer,
    rabbitmq: RabbitMQProcess,
    held_channel: aiormq.abc.AbstractChannel,
) -> None:
    """KEDA's order for each key (trigger metadata, authParams, resolved env) is
    KEDA's typed config; the expected answers are its built-in scalers'."""
    redis_password_server.client().delete("jobs")
    redis_password_server.client().rpush("jobs", *range(4))
    url = fill(moto, "livediff-auth", visible=2, in_flight=1, delayed=0)
    await prepare_rabbitmq(rabbitmq, held_channel)
    cases = auth_cases(redis_password_server, rabbitmq, moto, url)
    objects = FixedObjects()
    async with start_server(kube=objects, allow_aws_endpoints=moto.endpoint) as s:
        for c in cases:
            objects.add_trigger("default", c["name"], {
                **c["metadata"], "scalerAddress": s.address, "scalerType": c["type"]
            }, c["authParams"])  # fmt: skip
        answers = await livediff(cases, s.address)
    disagreements = [
        f"{c['id']}: KEDA {answers[c['id']]['builtin']} | ours {answers[c['id']]['external']}"
        for c in cases
        if verdict(answers[c["id"]]["builtin"]) != verdict(answers[c["id"]]["external"])
    ]
    reads = sum(verdict(a["builtin"]) != "error" for a in answers.values())
    print(f"\n{len(cases)} TriggerAuthentication cases: {len(cases) - len(disagreements)} agree, "
          f"{reads} of them reads")  # fmt: skip
    assert reads >= 10
    assert not disagreements, "\n".join(disagreements)


def tls_auth_cases(redis: RedisProcess, pki: Any, rabbitmq: RabbitMQProcess) -> list[Case]:
    """Broker TLS from a TriggerAuthentication (tls, ca, cert, key): a Redis that
    requires a client certificate, and RabbitMQ's TLS listeners."""
    ca, cert, key = (Path(p).read_text() for p in (pki.ca, pki.client_cert, pki.client_key))
    lst = {"address": redis.address, "listName": "jobs"}
    assert rabbitmq.tls is not None
    rmq_ca = Path(rabbitmq.tls[2]).read_text()
    amqps = f"amqps://guest:guest@localhost:{rabbitmq.amqps_port}/"
    https = f"https://guest:guest@localhost:{rabbitmq.https_port}/%2F"

    def c(ident: str, kind: str, metadata: dict[str, str], params: dict[str, str]) -> Case:
        return case(ident, kind, metadata, authParams=params, name=ident)

    return [
        c("tls-redis-client-cert", "redis", lst, {"tls": "enable", "ca": ca, "cert": cert, "key": key}),
        c("tls-redis-client-cert-upper", "redis", lst, {"tls": "enable", "ca": ca, "Cert": cert, "key": key}),
        c("tls-redis-no-client-cert", "redis", lst, {"tls": "enable", "ca": ca}),
        c("tls-redis-untrusted", "redis", lst, {"tls": "enable", "cert": cert, "key": key}),
        c("tls-redis-disabled", "redis", lst, {"tls": "disable", "ca": ca, "cert": cert, "key": key}),
        c("tls-redis-bad-value", "redis", lst, {"tls": "yes", "ca": ca, "cert": cert, "key": key}),
        c("tls-redis-bad-ca", "redis", lst, {"tls": "enable", "ca": "not a certificate", "cert": cert, "key": key}),
        c("tls-rabbitmq-amqps-ca", "rabbitmq", {"host": amqps, "queueName": "work"}, {"tls": "enable", "ca": rmq_ca}),
        c("tls-rabbitmq-amqps-client-cert", "rabbitmq", {"host": amqps, "queueName": "work"},
          {"tls": "enable", "ca": rmq_ca, "cert": cert, "key": key}),
        c("tls-rabbitmq-amqps-untrusted", "rabbitmq", {"host": amqps, "queueName": "work"}, {"tls": "enable"}),
        c("tls-rabbitmq-amqps-disabled", "rabbitmq", {"host": amqps, "queueName": "work"}, {"tls": "disable", "ca": rmq_ca}),
        c("tls-rabbitmq-https-ca", "rabbitmq", {"host": https, "queueName": "work"}, {"tls": "enable", "ca": rmq_ca}),
        c("tls-rabbitmq-cert-without-key", "rabbitmq", {"host": amqps, "queueName": "work"},
          {"tls": "enable", "ca": rmq_ca, "cert": cert}),
    ]  # fmt: skip


@pytest.mark.timeout(600)
async def test_broker_tls_from_a_trigger_authentication_as_kedas_scalers_use_it(
    start_server: ServerFactory,
    tmp_path: Path,
    rabbitmq: RabbitMQProcess,
    held_channel: aiormq.abc.AbstractChannel,
) -> None:
    """Per-trigger client certificates, which no external scaler could have before:
    the same TriggerAuthentication parameters, KEDA's built-in scaler and ours."""
    from tests.certs import make_pki

    pki = make_pki(tmp_path / "pki")
    redis = RedisProcess(
        tmp_path / "redis", tls=(pki.server_cert, pki.server_key, pki.ca),
        client_cert=(pki.client_cert, pki.client_key),
    )  # fmt: skip
    redis.start()
    try:
        redis.client().delete("jobs")
        redis.client().rpush("jobs", *range(3))
        await prepare_rabbitmq(rabbitmq, held_channel)
        cases = tls_auth_cases(redis, pki, rabbitmq)
        objects = FixedObjects()
        async with start_server(kube=objects) as s:
            for c in cases:
                objects.add_trigger("default", c["name"], {
                    **c["metadata"], "scalerAddress": s.address, "scalerType": c["type"]
                }, c["authParams"])  # fmt: skip
            answers = await livediff(cases, s.address)
    finally:
        redis.stop()
    disagreements = [
        f"{c['id']}: KEDA {answers[c['id']]['builtin']} | ours {answers[c['id']]['external']}"
        for c in cases
        if verdict(answers[c["id"]]["builtin"]) != verdict(answers[c["id"]]["external"])
    ]
    reads = [c["id"] for c in cases if verdict(answers[c["id"]]["builtin"]) != "error"]
    print(f"\n{len(cases)} broker TLS cases: {len(cases) - len(disagreements)} agree; "
          f"reads: {', '.join(reads)}")  # fmt: skip
    assert {"tls-redis-client-cert", "tls-rabbitmq-amqps-client-cert"} <= set(reads)
    assert not disagreements, "\n".join(disagreements)


def test_every_listed_difference_is_documented() -> None:
    text = DOCS.read_text()
    for ident in DIFFERENCES:
        assert f"`{ident}`" in text, f"{ident} is not in {DOCS.name}"


@pytest.mark.timeout(600)
async def test_age_reads_beside_kedas_own_stream_counts(
    start_server: ServerFactory, redis_db: RedisProcess, redis_password_server: RedisProcess
) -> None:
    """measure: age has no KEDA equivalent, but its read carries the count KEDA's
    built-in redis-streams scaler reads (length, pending, lag): each must equal KEDA's
    own value on the same stream, and the age is taken from the first entry the group
    was not given (the 4th of 6 here), from the id Redis stamped it with."""
    await prepare_redis(redis_db, redis_password_server)
    stm = {"address": redis_db.address, "stream": "events"}
    group = {**stm, "consumerGroup": "workers"}
    modes = {
        "length": case("age-beside-xlen", "redis-streams", dict(stm)),
        "pending": case("age-beside-pending", "redis-streams", dict(group)),
        "lag": case("age-beside-lag", "redis-streams", {**group, "lagCount": "2"}),
    }
    async with start_server() as s:
        answers = await livediff(list(modes.values()), s.address)
    ids = [entry_id for entry_id, _ in redis_db.client().xrange("events")]
    first, undelivered = (int(ids[i].split(b"-")[0]) / 1000 for i in (0, 3))
    triggers = Triggers({"redis": RedisAdapter(timeout=5)})
    try:
        for mode, c in modes.items():
            builtin = answers[c["id"]]["builtin"]
            assert not builtin.get("error"), builtin
            trigger = triggers.parse(
                {
                    "scalerType": "redis-streams",
                    **c["metadata"],
                    "measure": "age",
                    "targetAge": "60",
                }
            )
            sample = await triggers.adapter_for(trigger).read(trigger.query)
            assert sample.length == builtin["value"], (mode, builtin)
            assert sample.oldest == (first if mode == "length" else undelivered), mode
    finally:
        await triggers.aclose()
