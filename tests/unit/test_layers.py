"""Layers do not leak, followed through every import, not only a module's own.

DESIGN §6: brokers never import the server layer; the servicer, the reading cache
and the registry reach a broker client library only through ``scaler/brokers/``
(whose ``open_adapter`` imports a client when a server opens it); a broker's
``metadata.py`` imports no client library at all, even indirectly; only
``scaler/kube/`` imports the Kubernetes client.

Two views, each able to fail (``test_the_checks_can_fail``):
- static: the graph of ``import`` statements in scaler/ (inside functions too,
  and each package's ``__init__`` a module imports through), searched for a path;
- at run time: a fresh interpreter imports a module and lists what it loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PKG = ROOT / "scaler"
BROKER_CLIENTS = ("redis", "aio_pika", "aiormq", "pamqp", "aiobotocore", "botocore", "boto3",
                  "httpx", "aiohttp")  # fmt: skip
SERVER_LAYER = ("grpc", "grpc_health", "grpc_reflection", "scaler.service", "scaler.server",
                "scaler.cli", "scaler.proto", "scaler.readings", "scaler.metrics",
                "prometheus_client")  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names, with the packages a dotted
    name passes through (``import a.b.c`` runs ``a`` and ``a.b`` first)."""
    names: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text())):
        found: list[str] = []
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    # The packages that hold this module ran before it, whatever it imports: they are
    # its container, not its imports (a sibling's dotted name passes through them).
    own = module_name(path).split(".")
    return names - {".".join(own[: i + 1]) for i in range(len(own) - 1)}


GRAPH: dict[str, set[str]] = {module_name(p): _imports(p) for p in PKG.rglob("*.py")}


def path_to(start: str, banned: tuple[str, ...], avoid: tuple[str, ...] = ()) -> list[str] | None:
    """The shortest import chain from ``start`` to a module of ``banned`` that passes
    through no module of ``avoid`` (after ``start``), or None."""

    def is_in(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    queue: deque[list[str]] = deque([[start]])
    seen = {start}
    while queue:
        chain = queue.popleft()
        for nxt in sorted(GRAPH.get(chain[-1], ())):
            if nxt in seen:
                continue
            seen.add(nxt)
            if is_in(nxt, banned):
                return [*chain, nxt]
            if nxt in GRAPH and not is_in(nxt, avoid):
                queue.append([*chain, nxt])
    return None


BROKER_MODULES = sorted(m for m in GRAPH if m.startswith("scaler.brokers"))
METADATA_MODULES = sorted(
    m for m in GRAPH if m.startswith("scaler.brokers.") and m.endswith(".metadata")
)


@pytest.mark.parametrize("module", BROKER_MODULES)
def test_brokers_do_not_reach_the_server_layer(module: str) -> None:
    assert path_to(module, SERVER_LAYER) is None


@pytest.mark.parametrize("module", ["scaler.service", "scaler.readings", "scaler.registry"])
def test_the_servicer_reaches_broker_clients_only_through_brokers(module: str) -> None:
    assert path_to(module, BROKER_CLIENTS, avoid=("scaler.brokers",)) is None


@pytest.mark.parametrize("module", ["scaler.service", "scaler.readings", "scaler.registry"])
def test_the_servicer_loads_no_broker_client(module: str) -> None:
    """DESIGN: the servicer never imports a broker client, even indirectly: at run time
    (a broker's ``open_adapter`` imports its client only when a server opens it)."""
    assert loaded_clients(module) == []


@pytest.mark.parametrize("module", METADATA_MODULES)
def test_metadata_modules_import_no_client_library(module: str) -> None:
    assert path_to(module, BROKER_CLIENTS) is None
    assert loaded_clients(module) == []


WORKER_MODULES = sorted(m for m in GRAPH if m == "scaler.worker" or m.startswith("scaler.worker."))


@pytest.mark.parametrize("module", WORKER_MODULES)
def test_the_worker_does_not_reach_the_server_layer(module: str) -> None:
    """DESIGN §6: ``work`` imports no gRPC (it runs in every Job's container)."""
    assert path_to(module, SERVER_LAYER) is None


def test_importing_the_worker_loads_no_grpc_and_no_broker_client() -> None:
    """``import scaler.worker`` loads a broker's client only when a queue is opened."""
    code = "import json, sys, scaler.worker\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=True)  # fmt: skip
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert loaded & {"grpc", "prometheus_client", *BROKER_CLIENTS} == set()
    assert "scaler" in loaded


def loaded_clients(module: str) -> list[str]:
    """The broker client modules a fresh interpreter has after importing ``module``."""
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {BROKER_CLIENTS!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=True)  # fmt: skip
    return list(json.loads(done.stdout))


def test_the_checks_can_fail() -> None:
    """Against a vacuous check: known paths are found, both ways."""
    # A broker package reaches its client library through its client module ...
    chain = path_to("scaler.brokers.redis", BROKER_CLIENTS)
    assert chain is not None
    assert chain[-1].split(".")[0] == "redis"
    assert chain[1] == "scaler.brokers.redis.client"
    # ... and a client module is found loading its library at run time.
    assert "redis" in loaded_clients("scaler.brokers.redis.client")
    # A module that imported a client directly would be caught: a made-up edge.
    GRAPH["scaler.registry"].add("aiormq")
    try:
        assert path_to("scaler.registry", BROKER_CLIENTS, avoid=("scaler.brokers",)) == [
            "scaler.registry", "aiormq"]  # fmt: skip
    finally:
        GRAPH["scaler.registry"].discard("aiormq")


def test_only_the_kube_package_imports_the_kubernetes_client() -> None:
    """DESIGN: Kubernetes API access lives in scaler/kube/ (an optional extra)."""
    outside = {
        name: sorted(hits)
        for name, imported in GRAPH.items()
        if not name.startswith("scaler.kube")
        and (hits := {n for n in imported if n.split(".")[0] == "kubernetes"})
    }
    assert outside == {}
    assert any(n.split(".")[0] == "kubernetes" for n in GRAPH["scaler.kube.cache"])
