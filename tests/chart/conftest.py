"""Chart test fixtures: the pinned helm binary."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def helm() -> str:
    path = os.environ.get("KQS_HELM")
    if not path:
        done = subprocess.run(
            [str(ROOT / "scripts" / "install-helm")], capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            pytest.fail(f"no helm binary: {done.stderr}")
        path = done.stdout.strip()
    return path
