"""Layers do not leak: adapters never import the gRPC/server layer, and the servicer
never imports a broker client (STYLE.md). Checked on the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).parents[2] / "scaler"
BROKER_CLIENTS = (
    "redis",
    "aio_pika",
    "aiormq",
    "aiobotocore",
    "botocore",
    "boto3",
    "httpx",
    "aiohttp",
)
SERVER_LAYER = ("grpc", "grpc_health", "grpc_reflection", "scaler.service", "scaler.server",
                "scaler.cli", "scaler.proto", "scaler.readings", "scaler.metrics", "prometheus_client")  # fmt: skip


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _hits(imported: set[str], banned: tuple[str, ...]) -> set[str]:
    return {n for n in imported for b in banned if n == b or n.startswith(b + ".")}


@pytest.mark.parametrize("module", sorted((PKG / "adapters").glob("*.py")), ids=lambda p: p.name)
def test_adapters_do_not_import_the_server_layer(module: Path) -> None:
    assert _hits(_imports(module), SERVER_LAYER) == set()


@pytest.mark.parametrize("name", ["service.py", "readings.py", "metrics.py", "server.py"])
def test_server_layer_does_not_import_broker_clients(name: str) -> None:
    assert _hits(_imports(PKG / name), BROKER_CLIENTS) == set()


def test_the_checks_can_fail() -> None:
    """Guard against a vacuous check: a known import is found."""
    assert _hits(_imports(PKG / "adapters" / "redis.py"), BROKER_CLIENTS) == {
        "redis", "redis.asyncio", "redis.asyncio.cluster", "redis.asyncio.connection",
        "redis.asyncio.retry", "redis.asyncio.sentinel", "redis.backoff",
    }  # fmt: skip


def test_only_the_kube_package_imports_the_kubernetes_client() -> None:
    """DESIGN: Kubernetes API access lives in scaler/kube/ (an optional extra)."""
    outside = {
        str(path.relative_to(PKG)): hits
        for path in PKG.rglob("*.py")
        if "kube" not in path.relative_to(PKG).parts
        and (hits := _hits(_imports(path), ("kubernetes",)))
    }
    assert outside == {}
    inside = _hits(_imports(PKG / "kube" / "cache.py"), ("kubernetes",))
    assert inside  # the check sees imports inside functions too
