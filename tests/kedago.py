"""KEDA's own module for the tests: its CRDs and the Go programs of tests/keda.

Both come from the Go module proxy through ``go`` and are cached outside the
checkout (Go's module and build caches, and ``~/.cache/keda-queue-scaler``), so a
fresh clone needs nothing beside it, only Go.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MODULE = ROOT / "tests" / "keda"
KEDA_MODULE = "github.com/kedacore/keda/v2"
KEDA_VERSION = re.search(
    r"^\s*github\.com/kedacore/keda/v2 (v\S+)", (MODULE / "go.mod").read_text(), re.MULTILINE
).group(1)  # type: ignore[union-attr]


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "these tests need Go >= 1.26 (KEDA's module and its CRDs come from the Go module "
            "proxy): install Go, then run `make test` again",
            pytrace=False,
        )
    return go


@functools.cache
def keda_module_dir() -> Path:
    """KEDA's module source in Go's module cache (downloaded once)."""
    done = subprocess.run(
        [_go(), "mod", "download", "-json", f"{KEDA_MODULE}@{KEDA_VERSION}"],
        cwd=MODULE, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"go mod download {KEDA_MODULE}@{KEDA_VERSION}: {done.stderr or done.stdout}")
    return Path(json.loads(done.stdout)["Dir"])


def crd_dir() -> Path:
    """KEDA's CRDs (config/crd/bases) at the pinned version."""
    return keda_module_dir() / "config" / "crd" / "bases"


@functools.cache
def tools_dir() -> Path:
    """The built programs of tests/keda (scripts/keda-tools builds or reuses them).

    ``make test`` runs scripts/keda-tools before pytest and names the folder in
    ``KQS_KEDA_TOOLS``; a bare ``pytest`` builds them here, from the session fixture
    ``keda_tools`` (outside every test's time limit: a first build takes minutes).
    """
    given = os.environ.get("KQS_KEDA_TOOLS")
    if given and all((Path(given) / name).is_file() for name in ("jobmodel", "livediff")):
        return Path(given)
    _go()
    done = subprocess.run(
        [str(ROOT / "scripts" / "keda-tools")],
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"scripts/keda-tools failed:\n{done.stderr[-4000:]}", pytrace=False)
    return Path(done.stdout.strip())
