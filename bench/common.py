"""What the benchmark scripts share: a throw-away redis-server, free ports, and
the scaler started as its own process."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"serving gRPC \(\w+\) on \S+:(\d+);")
#: bench/noop_server.py's ready line, on its stdout.
NOOP_READY = re.compile(r"PORT (\d+)")


def serve_command(*flags: str) -> list[str]:
    """`keda-queue-scaler serve` on a free loopback port, /metrics off, and ``flags``."""
    return [sys.executable, "-m", "scaler", "serve", "--host", "127.0.0.1", "--port", "0",
            "--metrics-port", "-1", *flags]  # fmt: skip


def noop_command(*flags: str) -> list[str]:
    """bench/noop_server.py with ``flags`` (``--event-loop``, ``--heavy``)."""
    return [sys.executable, str(ROOT / "bench" / "noop_server.py"), *flags]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drain(stream: object) -> None:
    """Read a child's pipe in the background so it never blocks on a full pipe."""

    def read() -> None:
        for _ in stream:  # type: ignore[attr-defined]
            pass

    threading.Thread(target=read, daemon=True).start()


@contextmanager
def redis_server() -> Iterator[redis.Redis]:
    """A redis-server on a free loopback port without persistence; yields a client."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run `make brokers`")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.025)
            yield client
        finally:
            client.close()
            proc.terminate()
            proc.wait()


def start_scaler(*flags: str) -> tuple[subprocess.Popen[str], int]:
    """`keda-queue-scaler serve` on a free loopback port; returns (process, port)."""
    proc = subprocess.Popen(
        serve_command(*flags),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if m := READY.search(line):
            drain(proc.stderr)
            return proc, int(m.group(1))
    raise SystemExit("the scaler did not start")
