"""scripts/install-helm: a fitting helm on PATH is used as is; an old one is passed
over for the pinned build, whose default Kubernetes version fits the chart."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.chart.conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-helm"


def fake_helm(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    helm = folder / "helm"
    helm.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo "{version}+gabc1234"\n')
    helm.chmod(0o755)
    return helm


def install_helm(path_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{path_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("KQS_HELM_BUILD", None)
    return subprocess.run(
        [str(SCRIPT)], capture_output=True, text=True, timeout=900, env=env, check=False
    )


def test_a_recent_helm_on_path_is_used(tmp_path: Path) -> None:
    helm = fake_helm(tmp_path / "bin", "v3.16.2")
    done = install_helm(helm.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(helm)


def test_an_old_helm_on_path_is_passed_over_with_a_reason(tmp_path: Path, helm: str) -> None:
    old = fake_helm(tmp_path / "bin", "v3.8.0")
    done = install_helm(old.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != str(old)
    assert "'v3.8.0+gabc1234', not v3.14 or later" in done.stderr
    built = done.stdout.strip()
    # A built helm must template the chart (kubeVersion >= 1.25) without --kube-version.
    rendered = subprocess.run(
        [built, "template", "kqs", str(ROOT / "charts" / "keda-queue-scaler")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Deployment" in rendered.stdout
