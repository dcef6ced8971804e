"""Fixtures of the end-to-end suite (``make e2e``): the cluster, our scaler as a real
process, and brokers of its own. Skipped unless pytest runs with ``--run-e2e``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import free_port
from tests.e2e.cluster import Cluster, build_binaries, framework_apps, python_worker, work_app

WORKER_IMAGE = "ghcr.io/example/queue-worker"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-e2e"):
        return
    skip = pytest.mark.skip(reason="end to end: run with --run-e2e (make e2e)")
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    binaries = build_binaries()
    c = Cluster(
        tmp_path_factory.mktemp("cluster"),
        binaries,
        start_delay=3.0,
        images={WORKER_IMAGE: python_worker(), **framework_apps(), **work_app()},
    )
    try:
        c.start()
        yield c
    finally:
        c.stop()


@dataclass
class Scaler:
    proc: subprocess.Popen[str]
    address: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


READY = re.compile(r"serving gRPC \((?P<mode>[a-zA-Z]+)\) on 127\.0\.0\.1:(?P<port>\d+);")


def start_scaler(workdir: Path, *args: str) -> Scaler:
    """`keda-queue-scaler serve` as KEDA will reach it: a real process on loopback.

    Its own AWS identity (IRSA in a cluster) is a pair of keys for the emulator."""
    log = workdir / f"scaler-{time.monotonic_ns()}.log"
    handle = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scaler", "serve", "--host", "127.0.0.1", "--port", "0",
         "--metrics-host", "127.0.0.1", "--metrics-port", str(free_port()), *args],
        stdout=handle, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e"},
    )  # fmt: skip
    handle.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if m := READY.search(log.read_text()):
            return Scaler(proc, f"127.0.0.1:{m['port']}", log)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the scaler did not start:\n{log.read_text()}")


@pytest.fixture(scope="session")
def scaler(tmp_path_factory: pytest.TempPathFactory, moto_server: Any) -> Iterator[Scaler]:
    s = start_scaler(
        tmp_path_factory.mktemp("scaler"), "--allow-aws-endpoints", moto_server.endpoint
    )
    yield s
    s.stop()
