"""What the container image and pip users get: a wheel with the generated stubs and
the CLI, and a Dockerfile that hadolint accepts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_wheel_contains_the_package_stubs_and_cli(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("keda_queue_scaler-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "scaler/cli.py",
        "scaler/py.typed",
        "scaler/proto/externalscaler_pb2.py",
        "scaler/proto/externalscaler_pb2_grpc.py",
        "scaler/brokers/redis/client.py",
        "scaler/brokers/sqs/metadata.py",
        "scaler/brokers/rabbitmq/__init__.py",
    ):
        assert needed in names, needed
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "keda-queue-scaler = scaler.cli:main" in text


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_promises() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") == 2  # build stage + runtime stage
    assert "\nUSER 10001:10001" in text  # numeric non-root user
    assert "EXPOSE 6000 9464" in text
    assert 'ENTRYPOINT ["keda-queue-scaler", "serve"]' in text
    assert '"keda-queue-scaler", "probe"' in text
    # the install is scripts/image-venv: the same pins as CI, every extra the chart enables
    assert "RUN sh image-venv /opt/venv python" in text
    script = (ROOT / "scripts" / "image-venv").read_text()
    assert "-c constraints.txt '.[kubernetes]'" in script


def dev_only() -> set[str]:
    """Top-level modules that only the test/lint/dev extras bring in."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {d.split(">")[0].split("<")[0].split("[")[0].strip() for d in project["dependencies"]}
    extras = project["optional-dependencies"]
    names = {
        d.split(">")[0].split("<")[0].split("=")[0].split("!")[0].split("[")[0].strip()
        for extra in ("test", "lint", "kubernetes") for d in extras[extra]
    } - runtime  # fmt: skip
    module = {"moto": "moto", "boto3": "boto3", "kubernetes": "kubernetes", "pytest": "pytest",
              "cryptography": "cryptography", "jsonschema": "jsonschema", "mypy": "mypy"}  # fmt: skip
    assert set(module) <= names, "the dev-only list below is out of date with pyproject"
    return set(module.values())


def test_the_runtime_and_cli_import_nothing_from_the_dev_extras() -> None:
    """`pip install .` (no extras) must run serve, explain and demo: the light install."""
    blocked = sorted(dev_only())
    code = (
        "import sys, importlib.abc\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError('dev-only module imported: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import scaler.cli, scaler.server, scaler.tools.explain, scaler.tools.demo\n"
        "for cmd in ('serve', 'explain', 'demo', 'probe'):\n"
        "    try:\n"
        "        scaler.cli.main([cmd, '--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (cmd, e.code)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("ok")
