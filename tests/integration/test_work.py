"""``keda-queue-scaler work`` and ``enqueue`` on the real brokers: an item's whole life
(done once, retried, dead-lettered once, released on SIGTERM, returned after SIGKILL),
counted through each broker's own API."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.brokers import RedisProcess
from tests.conftest import ServerFactory, run_cli
from tests.workq import (
    ROOT_ENV,
    WorkQueue,
    cli,
    enqueue,
    open_queue,
    redis_list,
    run,
)

BROKERS = ("redis-list", "redis-stream", "sqs", "rabbitmq")
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(params=BROKERS)
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[WorkQueue]:
    made = await open_queue(request, request.param, "jobs")
    try:
        yield made
    finally:
        await made.close()


def record(log: Path, then: str = "exit 0") -> list[str]:
    """A CMD that appends what it was given (stdin, the file, the attempt) to ``log``."""
    return ["--", "sh", "-c",
            f'printf "%s|%s|%s\\n" "$(cat)" "$(cat "$KQS_ITEM_FILE")" "$KQS_ATTEMPT" >> {log}; {then}']  # fmt: skip


async def wait_for(condition: object, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_each_item_is_worked_once_and_acknowledged(queue: WorkQueue, tmp_path: Path) -> None:
    payloads = [f"item-{i}".encode() for i in range(5)] + ["ünï €".encode()]
    await enqueue(queue, payloads)
    assert await queue.ready() == len(payloads)
    log = tmp_path / "log"
    code, text = await run(queue, ["work", "--until-empty", "--wait", "0", *record(log)])
    assert code == 0, text
    lines = log.read_bytes().splitlines()
    # stdin and the file carry the payload alone; every item was a first attempt
    assert sorted(lines) == sorted(p + b"|" + p + b"|1" for p in payloads)
    assert await queue.ready() == 0
    assert await queue.held() == 0
    assert await queue.dead() == []


async def test_an_empty_queue_exits_3_without_running_cmd(queue: WorkQueue, tmp_path: Path) -> None:
    log = tmp_path / "log"
    code, text = await run(queue, ["work", "--wait", "0", *record(log)])
    assert code == 3, text
    assert not log.exists()


async def test_a_poison_item_is_dead_lettered_exactly_once(
    queue: WorkQueue, tmp_path: Path
) -> None:
    await enqueue(queue, [b"poison"])
    log = tmp_path / "log"
    codes = []
    for _ in range(4):
        code, text = await run(queue, ["work", "--max-attempts", "3", "--wait", "5",
                                       *record(log, "exit 7")])  # fmt: skip
        codes.append(code)
        if code != 5:
            break
    assert codes == [5, 5, 4], text
    assert log.read_bytes().splitlines() == [b"poison|poison|1", b"poison|poison|2",
                                             b"poison|poison|3"]  # fmt: skip
    assert await queue.dead() == [b"poison"]
    assert await queue.ready() == 0
    assert await queue.held() == 0


async def test_sigterm_forwards_to_cmd_and_releases_the_item_at_once(
    queue: WorkQueue, tmp_path: Path
) -> None:
    await enqueue(queue, [b"long"])
    started, got = tmp_path / "started", tmp_path / "term"
    cmd = ["--", "sh", "-c", f"trap 'echo term > {got}; exit 1' TERM; echo > {started}; "
           "while :; do sleep 0.1; done"]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *cli("work", *queue.meta_args(), "--lease", "300", "--grace", "10", *cmd),
        env={**ROOT_ENV, **queue.env}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await wait_for(started.exists)
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 143, err.decode()
    assert got.read_text().strip() == "term"  # CMD received the SIGTERM
    # released at once (the lease was 300 s): the next worker takes it now
    log = tmp_path / "log"
    code, text = await run(queue, ["work", "--wait", "5", *record(log)])
    assert code == 0, text
    attempt = int(log.read_text().strip().rsplit("|", 1)[1])
    # a release does not count, except where the broker itself counts receives (SQS)
    assert attempt == (2 if queue.broker == "sqs" else 1)


async def test_after_sigkill_the_item_returns_when_its_lease_ends(
    queue: WorkQueue, tmp_path: Path
) -> None:
    await enqueue(queue, [b"orphan"])
    started = tmp_path / "started"
    cmd = ["--", "sh", "-c", f"echo > {started}; exec sleep 300"]
    proc = await asyncio.create_subprocess_exec(
        *cli("work", *queue.meta_args(), "--lease", "2", *cmd), env={**ROOT_ENV, **queue.env},
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_for(started.exists)
    proc.kill()
    await proc.wait()
    log = tmp_path / "log"
    code, text = await run(queue, ["work", "--wait", "60", "--lease", "2", *record(log)])
    assert code == 0, text
    payload, _, attempt = log.read_text().strip().split("|")
    assert payload == "orphan"
    assert int(attempt) == 2  # the killed worker's claim counted
    assert await queue.ready() == 0
    assert await queue.held() == 0


async def test_an_item_claimed_past_max_attempts_is_dead_lettered_without_cmd(
    queue: WorkQueue, tmp_path: Path
) -> None:
    """A worker that dies every time (an item that exhausts memory) never acks or
    fails: the claims themselves count."""
    await enqueue(queue, [b"crasher"])
    started = tmp_path / "started"
    for _ in range(2):
        started.unlink(missing_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *cli("work", *queue.meta_args(), "--lease", "1", "--max-attempts", "2", "--wait",
                 "60", "--", "sh", "-c", f"echo > {started}; exec sleep 300"),
            env={**ROOT_ENV, **queue.env}, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await wait_for(started.exists)
        proc.kill()
        await proc.wait()
    log = tmp_path / "log"
    code, text = await run(queue, ["work", "--lease", "1", "--max-attempts", "2", "--wait",
                                   "60", *record(log)])  # fmt: skip
    assert code == 4, text
    assert not log.exists()
    assert await queue.dead() == [b"crasher"]


async def test_bad_metadata_is_a_usage_error_naming_the_key(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cli("work", "--meta", "scalerType=redis", "--meta", "address=127.0.0.1:1",
             "--", "true"), stderr=asyncio.subprocess.PIPE, env=ROOT_ENV,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert '"listName" is required' in err.decode()


async def test_an_unreachable_broker_exits_69_naming_it(tmp_path: Path) -> None:
    from tests.brokers import free_port

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *cli("work", "--meta", "scalerType=redis", "--meta", f"address=127.0.0.1:{port}",
             "--meta", "listName=jobs", "--timeout", "2", "--", "true"),
        stderr=asyncio.subprocess.PIPE, env=ROOT_ENV,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 69
    assert f"127.0.0.1:{port}" in err.decode()


async def test_the_scaler_counts_the_claims_workers_hold(
    redis_db: RedisProcess, tmp_path: Path
) -> None:
    """``include: ready, active, expired`` on the list a worker holds an item of: the
    truth is what this test did (3 items, one claimed by a worker it started, then
    that worker killed)."""
    from scaler.brokers.redis.client import RedisAdapter
    from scaler.brokers.redis.metadata import RedisListMetadata

    queue = redis_list(redis_db.address, redis_db.client())
    await enqueue(queue, [b"a", b"b", b"c"])
    adapter = RedisAdapter(timeout=5)

    async def count(include: str) -> float:
        meta = {**queue.meta, "include": include}
        trigger = RedisListMetadata.parse(meta, scaler_type="redis").trigger("redis")
        return await adapter.read(trigger.query)

    started = tmp_path / "started"
    proc = await asyncio.create_subprocess_exec(
        *cli("work", *queue.meta_args(), "--lease", "3", "--", "sh", "-c",
             f"echo > {started}; exec sleep 300"),
        env={**ROOT_ENV, **queue.env}, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for(started.exists)
        assert [await count(s) for s in ("ready", "active", "expired")] == [2, 1, 0]
        assert await count("ready,active") == 3
        proc.kill()
        await proc.wait()
        async with asyncio.timeout(60):  # the killed worker's lease ends
            while await count("expired") != 1:
                await asyncio.sleep(0.1)
        assert [await count(s) for s in ("ready", "active")] == [2, 0]
        assert await count("ready,active,expired") == 3
    finally:
        if proc.returncode is None:
            proc.kill()
        await adapter.aclose()


async def test_explain_shows_each_state_of_a_worked_list(
    start_server: ServerFactory, redis_db: RedisProcess, tmp_path: Path
) -> None:
    """explain on the work example while a worker holds one of three items: the value
    is the sum of the states in ``include``, each shown alone beside it."""
    import json

    import yaml

    queue = redis_list(redis_db.address, redis_db.client())
    await enqueue(queue, [b"a", b"b", b"c"])
    doc = yaml.safe_load((EXAMPLES / "work-redis-list-scaledjob.yaml").read_text())
    doc["spec"]["triggers"][0]["metadata"]["include"] = "ready,active,expired"
    manifest = tmp_path / "sj.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    started = tmp_path / "started"
    proc = await asyncio.create_subprocess_exec(
        *cli("work", *queue.meta_args(), "--", "sh", "-c", f"echo > {started}; exec sleep 300"),
        env={**ROOT_ENV, **queue.env}, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_for(started.exists)
        async with start_server() as s:
            code, out, err = await run_cli(
                "explain", str(manifest), "--address", s.address, "--output", "json",
                "--env", f"REDIS_ADDRESS={redis_db.address}", "--env", "REDIS_PASSWORD=",
            )  # fmt: skip
            assert code == 0, err
            trigger = json.loads(out)["triggers"][0]
            assert trigger["value"] == 3
            assert trigger["states"] == {"ready": 2, "active": 1, "expired": 0}
            code, out, err = await run_cli(
                "explain", str(manifest), "--address", s.address,
                "--env", f"REDIS_ADDRESS={redis_db.address}", "--env", "REDIS_PASSWORD=",
            )  # fmt: skip
            assert "trigger 0 counts ready 2 + active 1 + expired 0 (include)" in out, out
    finally:
        proc.kill()
        await proc.wait()


async def test_a_count_of_claims_is_bounded_and_a_foreign_key_type_is_named(
    redis_db: RedisProcess,
) -> None:
    """What the worst tenant could put where a worked list keeps its leases: more
    leases than one count reads, or a key of another type. Both are
    FAILED_PRECONDITION naming the key, never a guess and never INTERNAL."""
    from scaler.brokers.redis.client import RedisAdapter
    from scaler.brokers.redis.formats import SCAN_LIMIT
    from scaler.brokers.redis.metadata import RedisListMetadata
    from scaler.errors import UnsupportedState

    client = redis_db.client()
    meta = {"scalerType": "redis", "address": redis_db.address, "listName": "jobs",
            "include": "ready,active"}  # fmt: skip
    query = RedisListMetadata.parse(meta, scaler_type="redis").trigger("redis").query
    adapter = RedisAdapter(timeout=5)
    try:
        client.zadd("jobs:kqs:leases", {f"c{i}": 0 for i in range(SCAN_LIMIT + 1)})
        with pytest.raises(UnsupportedState, match=r"jobs:kqs:leases.*10,000"):
            await adapter.read(query)
        client.delete("jobs:kqs:leases")
        client.set("jobs:kqs:leases", "x")
        with pytest.raises(UnsupportedState, match=r'"jobs:kqs:leases".* a string'):
            await adapter.read(query)
    finally:
        await adapter.aclose()


async def test_a_refused_password_is_named_but_never_shown(
    redis_password_server: RedisProcess,
) -> None:
    secret = "not-the-password-7c1e"
    proc = await asyncio.create_subprocess_exec(
        *cli("work", "--meta", "scalerType=redis", "--meta",
             f"address={redis_password_server.address}", "--meta", "listName=jobs",
             "--meta", "passwordFromEnv=PW", "--log-level", "debug", "--", "true"),
        env={**ROOT_ENV, "PW": secret}, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 69
    text = (out + err).decode()
    assert "refused our credentials" in text
    assert secret not in text


LIGHT = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name + " is not installed")
        return None

sys.meta_path.insert(0, NotInstalled())
from scaler.cli import main
main(sys.argv[1:])
"""


async def test_work_on_redis_needs_only_redis_py(redis_db: RedisProcess, tmp_path: Path) -> None:
    """The light install (`pip install --no-deps keda-queue-scaler redis`): with gRPC,
    protobuf, Prometheus, YAML and the other brokers' clients missing, `work` claims,
    runs CMD and acknowledges on a Redis list."""
    blocked = {"grpc", "grpc_health", "grpc_reflection", "google", "prometheus_client", "yaml",
               "aiobotocore", "botocore", "boto3", "aiormq", "pamqp", "aiohttp", "kubernetes"}  # fmt: skip
    queue = redis_list(redis_db.address, redis_db.client())
    await enqueue(queue, [b"light"])
    out = tmp_path / "out"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LIGHT.format(blocked=blocked), "work", *queue.meta_args(),
        "--wait", "0", "--", "sh", "-c", f"cat > {out}", env=ROOT_ENV,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.read_bytes() == b"light"
    assert await queue.ready() == 0
