"""Chart test fixtures: the pinned helm binary."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

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


def load_tool(name: str) -> ModuleType:
    """One of tools/*.py (not a package), loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
