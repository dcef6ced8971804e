"""Fixtures of the end-to-end suite (``make e2e``): the cluster, our scaler as a real
process, and brokers of its own. Skipped unless pytest runs with ``--run-e2e``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.brokers import free_port
from tests.e2e.cluster import Cluster, build_binaries, framework_apps, python_worker, work_app

WORKER_IMAGE = "ghcr.io/example/queue-worker"
#: the ScaledObject example's long-running consumer; here it takes nothing, so the
#: queue length a test sets alone decides the replicas
CONSUMER_IMAGE = "ghcr.io/example/queue-consumer"


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
        images={
            WORKER_IMAGE: python_worker(),
            CONSUMER_IMAGE: ["sleep", "infinity"],
            **framework_apps(),
            **work_app(),
        },
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
    metrics: str = ""  # its /metrics URL

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


READY = re.compile(r"serving gRPC \((?P<mode>[a-zA-Z]+)\) on 127\.0\.0\.1:(?P<port>\d+);")


CHART = Path(__file__).parents[2] / "charts" / "keda-queue-scaler"


def image_command() -> list[str]:
    """The image's entrypoint, ``keda-queue-scaler serve``, from the image's own install
    (``make image-venv``: scripts/image-venv, which the Dockerfile runs)."""
    venv = os.environ.get("KQS_IMAGE_VENV")
    if not venv:
        pytest.fail(
            "KQS_IMAGE_VENV is not set: run the suite with make e2e (it builds .venv-image)"
        )
    return [str(Path(venv).resolve() / "bin" / "keda-queue-scaler"), "serve"]


def rendered_container(*values: str, files: Path | None = None) -> dict[str, Any]:
    """The scaler's container as the chart renders it with ``values`` (``--set``
    arguments or ``-f FILE``); with ``files``, the paths the chart mounts
    (/etc/keda-queue-scaler/...) point into that folder instead."""
    done = subprocess.run(
        [os.environ.get("KQS_HELM") or "helm", "template", "kqs", str(CHART),
         "--show-only", "templates/deployment.yaml", *values],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (container,) = yaml.safe_load(done.stdout)["spec"]["template"]["spec"]["containers"]
    if files is not None:
        text = json.dumps(container).replace("/etc/keda-queue-scaler", str(files))
        container = json.loads(text)
    return dict(container)


def chart_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment (the chart's settings); values from Secrets
    are the tests' own to give."""
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def start_scaler(
    workdir: Path,
    *args: str,
    values: tuple[str, ...] | None = (),
    files: Path | None = None,
    command: list[str] | None = None,
) -> Scaler:
    """`keda-queue-scaler serve` as KEDA will reach it: a real process on loopback, run
    as the image runs it (``command``: the image's install, and the environment the chart
    renders with ``values``; None: no chart); ``args`` are the flags a test adds (flags
    win over the environment).

    Its own AWS identity (IRSA in a cluster) is a pair of keys for the emulator."""
    log = workdir / f"scaler-{time.monotonic_ns()}.log"
    handle = log.open("w")
    env = chart_env(rendered_container(*values, files=files)) if values is not None else {}
    metrics_port = free_port()
    proc = subprocess.Popen(
        [*(command or image_command()), "--host", "127.0.0.1", "--port", "0",
         "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port), *args],
        stdout=handle, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **env, "AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e"},
    )  # fmt: skip
    handle.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if m := READY.search(log.read_text()):
            return Scaler(
                proc, f"127.0.0.1:{m['port']}", log, f"http://127.0.0.1:{metrics_port}/metrics"
            )
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the scaler did not start:\n{log.read_text()}")


@pytest.fixture(scope="session")
def scaler(tmp_path_factory: pytest.TempPathFactory, moto_server: Any) -> Iterator[Scaler]:
    s = start_scaler(
        tmp_path_factory.mktemp("scaler"),
        values=("--set", f"config.allowAwsEndpoints={{{moto_server.endpoint}}}"),
    )
    yield s
    s.stop()
