"""The real command: `keda-queue-scaler serve` as a process, signals, --help, probe."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.settings import Settings, env_name
from tests.brokers import MotoServer, RedisProcess
from tests.conftest import metrics_request

READY = re.compile(r"serving gRPC \((?P<mode>[a-zA-Z]+)\) on (?P<host>\S+):(?P<port>\d+);")
CLI = [sys.executable, "-m", "scaler"]
LOOPBACK_METRICS = ["--metrics-host", "127.0.0.1", "--metrics-port", "0"]


@dataclasses.dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    log: list[str]


@pytest.fixture
def serve() -> Iterator[object]:
    started: list[Served] = []

    def start(*args: str) -> Served:
        proc = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", "0", *LOOPBACK_METRICS, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stderr is not None
        log: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            log.append(line)
            if m := READY.search(line):
                served = Served(proc, int(m["port"]), log)
                started.append(served)
                return served
        proc.kill()
        raise AssertionError("server did not report ready:\n" + "".join(log))

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
        if served.proc.stderr:
            served.proc.stderr.close()


async def stream_end(stream: Any) -> grpc.StatusCode:
    """The status a stream ends with (it sends no more changes: the flag is steady)."""
    try:
        while True:
            await stream.read()
    except grpc.aio.AioRpcError as err:
        return err.code()


async def test_sigterm_gives_every_call_in_flight_the_grace_period(serve: object) -> None:
    """Row 5 of the security review: SIGTERM with 100 reads taking 2 to 8 s in flight
    and 50 open streams. Every read completes with its value, every stream ends with
    UNAVAILABLE (reconnect elsewhere), and the process exits 0 once they are done."""
    from tests.brokers import SlowRedis

    broker = SlowRedis()
    await broker.start()
    served = serve(  # type: ignore[operator]
        "--grace-period", "30", "--read-timeout", "20", "--stream-interval", "0.5",
        "--redis-max-connections", "128",
    )  # fmt: skip

    def meta(key: str) -> dict[str, str]:
        return {"scalerType": "redis", "address": broker.address, "listName": key}

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            streams = [stub.StreamIsActive(metrics_request(meta("fast")).scaledObjectRef)
                       for _ in range(50)]  # fmt: skip
            for stream in streams:
                assert (await stream.read()).result is True
            keys = [f"slow-{2 + 6 * i / 99:.2f}" for i in range(100)]
            calls = [asyncio.ensure_future(stub.GetMetrics(metrics_request(meta(k)))) for k in keys]
            async with asyncio.timeout(30):
                await broker.arrived(100)  # every read is at the broker: in flight
            served.proc.send_signal(signal.SIGTERM)
            replies = await asyncio.gather(*calls, return_exceptions=True)
            ends = [await stream_end(stream) for stream in streams]
    finally:
        await broker.stop()
    assert [r.metricValues[0].metricValue for r in replies] == [5] * 100  # type: ignore[union-attr]
    assert set(ends) == {grpc.StatusCode.UNAVAILABLE}
    assert await asyncio.to_thread(served.proc.wait, 60) == 0
    rest = served.proc.stderr.read() if served.proc.stderr else ""
    assert "stopping" in rest
    assert "stopped" in rest


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_each_event_loop_serves_and_stops(
    serve: object, redis_db: RedisProcess, loop: str
) -> None:
    """--event-loop picks the loop serve runs on (the start line names the one
    running); on either, a read answers with the broker's own count, a bad trigger
    is INVALID_ARGUMENT, and SIGTERM stops the process with 0."""
    redis_db.client().rpush("jobs", *range(7))
    served = serve("--event-loop", loop)  # type: ignore[operator]
    assert served.log[-1].rstrip().endswith(f"event loop {loop}")
    meta = {"scalerType": "redis", "address": redis_db.address, "listName": "jobs"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        reply = await stub.GetMetrics(metrics_request(meta), timeout=20)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.GetMetrics(metrics_request({**meta, "listLength": "x"}), timeout=20)
    assert reply.metricValues[0].metricValueFloat == redis_db.client().llen("jobs")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    served.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(served.proc.wait, 30) == 0


def test_sigint_stops_an_idle_server(serve: object) -> None:
    served = serve()  # type: ignore[operator]
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(15) == 0


def test_probe_reports_serving_and_fails_when_down(serve: object) -> None:
    served = serve()  # type: ignore[operator]
    address = f"127.0.0.1:{served.port}"
    ok = subprocess.run([*CLI, "probe", "--address", address], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "SERVING" in ok.stdout
    served.proc.terminate()
    served.proc.wait(15)
    down = subprocess.run(
        [*CLI, "probe", "--address", address, "--timeout", "1"], capture_output=True, text=True
    )
    assert down.returncode == 1
    assert "UNAVAILABLE" in down.stderr or "DEADLINE_EXCEEDED" in down.stderr


def test_serve_help_shows_every_setting_with_env_and_default() -> None:
    out = subprocess.run([*CLI, "serve", "--help"], capture_output=True, text=True, check=True)
    text = " ".join(out.stdout.split())  # argparse wraps lines
    for f in dataclasses.fields(Settings):
        assert f"--{f.name.replace('_', '-')}" in text, f.name
        assert env_name(f.name) in text, f.name


def test_bad_settings_exit_2_with_the_reason() -> None:
    env = {**os.environ, "KQS_PORT": "not-a-port"}
    out = subprocess.run([*CLI, "serve"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 2
    assert "KQS_PORT='not-a-port' must be an integer" in out.stderr
    out = subprocess.run(
        [*CLI, "serve", "--read-timeout", "0"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert "read-timeout must be greater than 0" in out.stderr


def test_json_logs_are_one_object_per_line(serve: object) -> None:
    import json

    served = serve("--log-format", "json")  # type: ignore[operator]
    entry = json.loads(served.log[-1])
    assert entry["level"] == "INFO"
    assert entry["logger"] == "scaler.server"
    assert READY.search(entry["message"])
    assert set(entry) == {"time", "level", "logger", "message"}


def _serve_fails(*args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [*CLI, "serve", "--host", "127.0.0.1", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr.strip().splitlines()


def test_startup_errors_are_one_line_with_the_cause(tmp_path: Path) -> None:
    from tests.certs import make_pki

    pki = make_pki(tmp_path / "a")
    other = make_pki(tmp_path / "b")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = str(held.getsockname()[1])
        cases = [
            (["--port", busy, "--metrics-port", "-1"], f"127.0.0.1:{busy} (--port)"),
            (["--port", "0", "--metrics-host", "127.0.0.1", "--metrics-port", busy],
             f"127.0.0.1:{busy} (--metrics-port)"),
            (["--port", "0", "--metrics-port", "-1", "--tls-cert-file", str(pki.server_cert),
              "--tls-key-file", str(other.server_key)], "does not match the certificate"),
            (["--port", "0", "--metrics-port", "-1", "--tls-cert-file", str(not_pem),
              "--tls-key-file", str(pki.server_key)], "not a PEM certificate"),
            (["--port", "0", "--metrics-port", "-1", "--tls-cert-file", str(tmp_path / "nope"),
              "--tls-key-file", str(pki.server_key)], "is not a readable file"),
            (["--port", "0", "--metrics-port", "-1", "--tls-cert-file", str(pki.server_cert),
              "--tls-key-file", str(pki.server_key), "--tls-client-ca-file", str(not_pem)],
             "--tls-client-ca-file"),
        ]  # fmt: skip
        for args, needle in cases:
            code, lines = _serve_fails(*args)
            assert code == 2, (args, lines)
            assert len(lines) == 1, lines
            assert lines[0].startswith("keda-queue-scaler serve: ")
            assert needle in lines[0], lines


async def test_secrets_never_reach_the_log_even_at_debug(
    serve: object, moto: MotoServer, redis_password_server: RedisProcess, rabbitmq: Any
) -> None:
    """Row 4 of the security review: a RabbitMQ URL whose password holds '/' or '#'
    (INTERNAL and a traceback with the password before), and botocore's DEBUG output
    (signed headers, the session token)."""
    secrets = {
        "sqs-secret-9f2c", "sqs-token-77ab", "pa/ss-5e1d", "pa#ss-4b7e", "redis-wrong-3c9d",
        "rabbit-pw-8e4a",
    }  # fmt: skip
    served = serve(  # type: ignore[operator]
        "--log-level", "DEBUG", "--log-format", "json", "--allow-aws-endpoints", moto.endpoint
    )
    rabbit_host = rabbitmq.amqp_url().split("://", 1)[1].rsplit("@", 1)[-1]
    calls = {
        "sqs": {
            "scalerType": "aws-sqs-queue", "queueURL": "logs", "awsRegion": "us-east-1",
            "awsEndpoint": moto.endpoint, "awsAccessKeyIDFromEnv": "AKIDLOGTEST",
            "awsSecretAccessKeyFromEnv": "sqs-secret-9f2c", "awsSessionTokenFromEnv": "sqs-token-77ab",
        },
        "slash": {"scalerType": "rabbitmq", "queueName": "q",
                  "host": f"amqp://user:pa/ss-5e1d@{rabbit_host}"},
        "hash": {"scalerType": "rabbitmq", "queueName": "q",
                 "host": f"amqp://user:pa#ss-4b7e@{rabbit_host}"},
        "redis": {"scalerType": "redis", "listName": "jobs",
                  "address": redis_password_server.address, "passwordFromEnv": "redis-wrong-3c9d"},
        "http": {"scalerType": "rabbitmq", "queueName": "q",
                 "host": rabbitmq.http_url().replace("://", "://nobody:rabbit-pw-8e4a@", 1)},
    }  # fmt: skip
    codes, messages = {}, []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        for name, meta in calls.items():
            try:
                await stub.GetMetrics(metrics_request(meta))
                codes[name] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as err:
                codes[name] = err.code()
                messages.append(err.details() or "")
    assert [m for m in messages if any(s in m for s in secrets)] == []
    served.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(served.proc.wait, 30) == 0
    log = "".join(served.log) + (served.proc.stderr.read() if served.proc.stderr else "")
    assert codes["slash"] == codes["hash"] == grpc.StatusCode.INVALID_ARGUMENT
    assert codes["redis"] == grpc.StatusCode.UNAUTHENTICATED
    assert '"level": "DEBUG"' in log  # the level was in force
    assert "INTERNAL" not in log
    leaked = sorted(s for s in secrets if s in log)
    assert leaked == [], leaked
