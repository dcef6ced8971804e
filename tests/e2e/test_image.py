"""The image runs what the chart asks of it: for the chart's default values and every
scenario under charts/keda-queue-scaler/ci/, ``serve`` from the image's own install
(``make image-venv``, the script the Dockerfile runs) starts with the environment the
chart renders, and the chart's own probe command finds it serving.

Before this test, the image lacked the ``kubernetes`` extra that
``kubernetes.enabled=true`` needs, and serve exited 2; the suite never noticed because
it ran the scaler from the development venv."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.certs import make_pki
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.conftest import CHART, READY, image_command, rendered_container, start_scaler
from tests.unit.test_versioning import version

pytestmark = pytest.mark.timeout(300)
SCENARIOS = ["default", *sorted(p.stem for p in (CHART / "ci").glob("*.yaml"))]
RELEASE = "kqs"  # rendered_container's release name: the fullname below is the chart's


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_images_install_serves_every_chart_scenario(
    scenario: str, cluster: Cluster, tmp_path: Path
) -> None:
    values = () if scenario == "default" else ("-f", str(CHART / "ci" / f"{scenario}.yaml"))
    files = tmp_path / "mounted"  # the chart's mounts: its TLS Secret and credential sets
    (files / "credentials").mkdir(parents=True)
    container = rendered_container(*values, files=files)
    readiness = container["readinessProbe"]
    # with TLS the chart's probe is the image's own client; without, a native gRPC probe
    # (the kubelet asks grpc.health.v1 for service ""), which the same client asks here
    probe = readiness["exec"]["command"] if "exec" in readiness else [
        "keda-queue-scaler", "probe", "--address", f"127.0.0.1:{readiness['grpc']['port']}"]  # fmt: skip
    if "--tls-server-name" in probe:
        # the chart's probe presents tls.crt as its client certificate under mTLS: the
        # chart's Certificate allows both usages, and so does this one
        make_pki(files / "tls", server_names=(probe[probe.index("--tls-server-name") + 1],),
                 server_also_client=True)  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    extra = ["--kubeconfig", str(cluster.kubeconfig)] if env.get("KQS_KUBERNETES") else []
    scaler = start_scaler(tmp_path, *extra, values=values, files=files)
    try:
        # the chart's readiness probe, as the kubelet runs it (our address for its port),
        # until it passes: with --kubernetes the scaler is ready once its watches listed
        argv = [image_command()[0], *probe[1:]]
        argv[argv.index("--address") + 1] = scaler.address

        def probed() -> bool:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                  check=False, env={**os.environ, **env})  # fmt: skip
            return done.returncode == 0

        wait_for("the chart's readiness probe passes", probed, 120)
        log = scaler.log.read_text()
        ready = READY.search(log)
        assert ready is not None
        mode = ("mTLS" if "KQS_TLS_CLIENT_CA_FILE" in env
                else "TLS" if "KQS_TLS_CERT_FILE" in env else "plaintext")  # fmt: skip
        assert ready["mode"] == mode, log
        metrics = re.search(r"metrics on (127\.0\.0\.1:\d+)", log)
        assert metrics is not None, log
        with urllib.request.urlopen(f"http://{metrics[1]}/metrics", timeout=10) as r:
            page = r.read().decode()
        assert f'keda_queue_scaler_build_info{{version="{version()}"}} 1.0' in page
    finally:
        scaler.stop()
