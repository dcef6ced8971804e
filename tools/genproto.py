"""Regenerate the committed protobuf/gRPC stubs in scaler/proto/ from proto/.

Usage: python tools/genproto.py [OUTDIR]   (default: the repository root)

The stubs are committed so that installing the package needs no protoc; the
test tests/unit/test_proto_fresh.py regenerates them into a temporary folder
and fails if the committed copies differ. grpcio-tools is pinned in
pyproject.toml so that every machine generates byte-identical files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto" / "externalscaler.proto"
GENERATED = ("externalscaler_pb2.py", "externalscaler_pb2.pyi", "externalscaler_pb2_grpc.py")


def generate(outdir: Path) -> list[Path]:
    """Run protoc with package-relative imports; return the generated files."""
    import grpc_tools
    from grpc_tools import protoc  # dev dependency only

    include = Path(grpc_tools.__file__).parent / "_proto"
    outdir.mkdir(parents=True, exist_ok=True)
    # Mapping proto/ to scaler/proto makes the generated modules import each
    # other as `scaler.proto.externalscaler_pb2`, so they work inside the package.
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{include}",
            f"-Iscaler/proto={PROTO.parent}",
            f"--python_out={outdir}",
            f"--pyi_out={outdir}",
            f"--grpc_python_out={outdir}",
            "scaler/proto/externalscaler.proto",
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    return [outdir / "scaler" / "proto" / name for name in GENERATED]


def main() -> None:
    target = ROOT / "scaler" / "proto"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copyfile(path, target / path.name)
            print(f"wrote {target / path.name}")


if __name__ == "__main__":
    sys.exit(main())
