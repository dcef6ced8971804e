"""Real broker processes for the tests, on 127.0.0.1 and free ports.

Each helper starts a Debian ``redis-server`` without persistence, waits until it
answers, and can be stopped and restarted on the same port (for failure tests).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

#: Deadline for a broker to start: generous, because an Erlang VM or a Redis cluster
#: starts many times slower on a loaded machine. Tests keep their own, tighter limits.
STARTUP_SECONDS = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_port() -> int:
    """A free port for a Redis Cluster node: its bus listens on port + 10000, so the
    port must be at most 55535 and port + 10000 free too."""
    for _ in range(1000):
        port = free_port()
        if port > 55535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(
            f"{binary} is not installed: run `make test` (it installs the test brokers) "
            "or apt-get install redis-server"
        )
    return path


class RedisProcess:
    """One redis-server. ``args`` are extra command-line options."""

    def __init__(
        self,
        workdir: Path,
        *args: str,
        password: str | None = None,
        config: Path | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        port: int | None = None,
        client_cert: tuple[Path, Path] | None = None,
    ) -> None:
        """``tls`` = (cert, key, CA): serve TLS only, on ``port``. ``client_cert`` =
        (cert, key): also require clients to present a certificate the CA signed
        (the test's own client presents this one)."""
        self.port = port or free_port()
        self.config = config
        self.tls = tls
        self.password = password
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        if tls:
            cert, key, ca = tls
            self.args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            auth_clients = "yes" if client_cert else "no"
            self.args += ["--tls-ca-cert-file", str(ca), "--tls-auth-clients", auth_clients]
        self.client_cert = client_cert
        if password:
            self.args += ["--requirepass", password]
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: dict[int, redis.Redis] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [
            require("redis-server"),
            *([str(self.config)] if self.config else []),  # a config file must come first
            *(["--port", "0", "--tls-port"] if self.tls else ["--port"]), str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
            *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client().ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on {self.port} exited: {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def client(self, db: int = 0) -> redis.Redis:
        """A synchronous client for test set-up, kept until stop()."""
        if db not in self._clients:
            tls: dict[str, Any] = (
                {"ssl": True, "ssl_ca_certs": str(self.tls[2])} if self.tls else {}
            )
            if self.client_cert:
                tls.update(
                    ssl_certfile=str(self.client_cert[0]), ssl_keyfile=str(self.client_cert[1])
                )
            self._clients[db] = redis.Redis(
                port=self.port, db=db, password=self.password, socket_timeout=5, **tls
            )
        return self._clients[db]

    def command_calls(self, command: str) -> int:
        """How many times the server ran ``command`` since the last CONFIG RESETSTAT."""
        stats = self.client().info("commandstats")
        entry = stats.get(f"cmdstat_{command.lower()}")
        return int(entry["calls"]) if entry else 0


class RedisCluster:
    """Three masters, no replicas: enough for key routing across slots. With
    ``password``, every node requires it (and uses it between nodes)."""

    def __init__(self, workdir: Path, *, password: str | None = None) -> None:
        self.password = password
        options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        options += ["--cluster-node-timeout", "2000"]
        if password:
            options += ["--masterauth", password]
        self.nodes = [
            RedisProcess(
                workdir / f"node{i}", *options, password=password, port=free_cluster_port()
            )
            for i in range(3)
        ]
        self._client: redis.RedisCluster | None = None

    @property
    def addresses(self) -> str:
        return ",".join(n.address for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        create = [
            require("redis-cli"),
            *auth,
            "--cluster",
            "create",
            *(n.address for n in self.nodes),
        ]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=STARTUP_SECONDS)
        # Every node must agree that the cluster is up, not only the first: a client
        # may be redirected to any of them (ClusterDownError on a busy machine).
        deadline = time.monotonic() + STARTUP_SECONDS
        while not all(n.client().cluster("info").get("cluster_state") == "ok" for n in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("redis cluster did not reach state ok on every node")
            time.sleep(0.1)

    def client(self) -> redis.RedisCluster:
        if self._client is None:
            self._client = redis.RedisCluster(
                host="127.0.0.1", port=self.nodes[0].port, password=self.password
            )
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        for node in self.nodes:
            node.stop()


class RedisSentinel:
    """A master and one sentinel that monitors it as ``mymaster``."""

    MASTER = "mymaster"

    def __init__(
        self,
        workdir: Path,
        *,
        sentinel_password: str | None = None,
        master_password: str | None = None,
    ) -> None:
        self.master = RedisProcess(workdir / "master", password=master_password)
        self.master_password = master_password
        self.sentinel_password = sentinel_password
        self.workdir = workdir
        self.sentinel: RedisProcess | None = None

    def start(self) -> None:
        self.master.start()
        conf = self.workdir / "sentinel.conf"
        lines = [
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.master.port} 1",
            f"sentinel down-after-milliseconds {self.MASTER} 5000",
        ]
        if self.master_password:
            lines.append(f'sentinel auth-pass {self.MASTER} "{self.master_password}"')
        if self.sentinel_password:
            lines.append(f'requirepass "{self.sentinel_password}"')
        conf.write_text("\n".join(lines) + "\n")
        self.sentinel = RedisProcess(
            self.workdir / "sentinel", "--sentinel", config=conf, password=None
        )
        self.sentinel.password = self.sentinel_password
        self.sentinel.start()

    @property
    def address(self) -> str:
        assert self.sentinel is not None
        return self.sentinel.address

    def stop(self) -> None:
        if self.sentinel is not None:
            self.sentinel.stop()
        self.master.stop()


class MotoServer:
    """moto in server mode (a real HTTP SQS/STS API) on a free loopback port.

    Every request is recorded on the emulator side as (action, access key id), so
    tests can count GetQueueAttributes calls and see which credentials signed them.
    """

    def __init__(self) -> None:
        import logging
        import threading

        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ: dict[str, object], start_response: object) -> object:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            action = target.rpartition(".")[2]
            if not action:  # query protocol (STS): Action=... in the form body
                import io
                import urllib.parse

                size = int(str(environ.get("CONTENT_LENGTH") or 0))
                body = environ["wsgi.input"].read(size) if size else b""  # type: ignore[attr-defined]
                environ["wsgi.input"] = io.BytesIO(body)
                form = urllib.parse.parse_qs(body.decode(errors="replace"))
                action = form.get("Action", [""])[0]
            auth = str(environ.get("HTTP_AUTHORIZATION", ""))
            key_id = auth.partition("Credential=")[2].partition("/")[0]
            with self._lock:
                self.requests.append((action, key_id))
            return app(environ, start_response)  # type: ignore[arg-type]

        self._server = make_server(
            "127.0.0.1", 0, counting, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(10)

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()
        with self._lock:
            self.requests.clear()

    def count(self, action: str) -> int:
        with self._lock:
            return sum(1 for a, _ in self.requests if a == action)

    def keys_used(self, action: str) -> list[str]:
        with self._lock:
            return [k for a, k in self.requests if a == action]

    def sqs(self) -> object:
        return self.client("sqs")

    def client(self, service: str) -> object:
        """A boto3 client of ``service`` (sqs, cloudwatch) on this moto server."""
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="test-setup",
            aws_secret_access_key="test-setup",
        )


class HangingServer:
    """Accepts TCP connections and never answers: a broker that hangs."""

    def __init__(self) -> None:
        import threading

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self.connected = threading.Event()  # set at the first connection
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
                self._held.append(conn)
                self.connected.set()
            except TimeoutError:
                continue
            except OSError:
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()


class RabbitMQProcess:
    """A Debian rabbitmq-server with the management plugin, on loopback ports.

    Everything lives under ``workdir`` (mnesia, logs, config, Erlang cookie) and
    its own epmd port, so it never touches a system-wide broker. The plugin is
    enabled offline through the enabled-plugins file; statistics are emitted every
    second (the default is 5 s) to keep the tests short.
    """

    USER = "guest"
    PASSWORD = "guest"

    def __init__(self, workdir: Path, *, tls: tuple[Path, Path, Path] | None = None) -> None:
        """``tls`` = (cert, key, CA): also listen with TLS on ``amqps_port`` and
        ``https_port``."""
        self.tls = tls
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.amqp_port = free_port()
        self.http_port = free_port()
        self.amqps_port = free_port()
        self.https_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        conf = (
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.http_port}\n"
            "collect_statistics_interval = 1000\n"
        )
        if tls:
            cert, key, ca = tls
            conf += (
                f"listeners.ssl.default = 127.0.0.1:{self.amqps_port}\n"
                f"ssl_options.cacertfile = {ca}\nssl_options.certfile = {cert}\n"
                f"ssl_options.keyfile = {key}\nssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
                f"management.ssl.ip = 127.0.0.1\nmanagement.ssl.port = {self.https_port}\n"
                f"management.ssl.cacertfile = {ca}\nmanagement.ssl.certfile = {cert}\n"
                f"management.ssl.keyfile = {key}\n"
            )
        (workdir / "rabbitmq.conf").write_text(conf)

    @property
    def env(self) -> dict[str, str]:
        import os

        w = self.workdir
        return {
            **os.environ,
            "HOME": str(w),  # the Erlang cookie
            "RABBITMQ_NODENAME": f"kqs{self.amqp_port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_CONFIG_FILE": str(w / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(w / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(w / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(w / "mnesia"),
            "RABBITMQ_LOG_BASE": str(w / "log"),
            "RABBITMQ_PID_FILE": str(w / "rabbitmq.pid"),
        }

    @staticmethod
    def _bin(name: str) -> str:
        for folder in ("/usr/lib/rabbitmq/bin", "/usr/sbin"):
            candidate = Path(folder) / name
            if candidate.exists():
                return str(candidate)
        return require(name)

    def start(self, timeout: float = STARTUP_SECONDS) -> None:
        if not (self.workdir / "enabled_plugins").exists():
            subprocess.run(
                [self._bin("rabbitmq-plugins"), "enable", "--offline", "rabbitmq_management"],
                env=self.env, check=True, capture_output=True, timeout=STARTUP_SECONDS,
            )  # fmt: skip
        self.proc = subprocess.Popen(
            [self._bin("rabbitmq-server")],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("GET", "/api/overview")
                with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                logs = sorted((self.workdir / "log").glob("*.log"))
                tail = logs[-1].read_text(errors="replace")[-3000:] if logs else ""
                raise RuntimeError(f"rabbitmq-server did not start:\n{tail}")
            time.sleep(0.1)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the broker; the data directory stays for a restart. By default a kill
        (fast); ``graceful`` sends SIGTERM and waits, so durable queues declared a
        moment ago are on disk (a kill can beat RabbitMQ's flush of its definitions)."""
        import os
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            self.proc.wait(60)
        self.proc = None

    def close(self) -> None:
        """Stop the broker and the epmd daemon it started on its own port."""
        self.stop()
        epmd = shutil.which("epmd") or next(
            iter(Path("/usr/lib/erlang").glob("erts-*/bin/epmd")), None
        )
        if epmd is None:
            return
        # epmd refuses to quit while it still lists the node it has not yet seen die.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(epmd), "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10
            )
            said = done.stdout + done.stderr
            if b"Killed" in said or b"Cannot connect" in said:
                return  # stopped, or not running
            time.sleep(0.2)  # "Killing not allowed - living nodes in database"

    def api(self, method: str, path: str, body: object = None) -> object:
        import base64
        import json
        import urllib.request

        token = base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            data = response.read()
        return json.loads(data) if data else None

    def amqp_url(self, vhost: str = "/") -> str:
        import urllib.parse

        return (
            f"amqp://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.amqp_port}/"
            f"{urllib.parse.quote(vhost, safe='')}"
        )

    def http_url(self, vhost: str = "") -> str:
        import urllib.parse

        suffix = f"/{urllib.parse.quote(vhost, safe='')}" if vhost else ""
        return f"http://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.http_port}{suffix}"


class LoopbackServer:
    """A TCP server in the test's event loop on a free 127.0.0.1 port; subclasses
    answer in ``_handle``."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class SlowRedis(LoopbackServer):
    """A Redis stand-in: TYPE answers ``list`` at once, LLEN answers 5 after the
    seconds named in the key (``slow-2.5``); anything else +OK. ``slow_started``
    counts LLENs of slow keys received; ``arrived(n)`` waits for n."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_started = 0
        self._changed = asyncio.Event()

    async def arrived(self, count: int) -> None:
        while self.slow_started < count:
            self._changed.clear()
            await self._changed.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                args = []
                for _ in range(int(line[1:])):
                    await reader.readline()
                    args.append((await reader.readline()).strip().decode())
                command = args[0].upper()
                if command == "TYPE":
                    writer.write(b"+list\r\n")
                elif command == "LLEN":
                    if args[1].startswith("slow-"):
                        self.slow_started += 1
                        self._changed.set()
                        await asyncio.sleep(float(args[1][5:]))
                    writer.write(b":5\r\n")
                else:
                    writer.write(b"+OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
