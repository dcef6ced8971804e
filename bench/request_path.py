"""Which of the scaler's own files one GetMetrics request runs through.

A server in this process, a Redis list behind it (a throw-away redis-server on a
free loopback port), and ``sys.setprofile`` recording every function of ``scaler/``
that runs while one request is answered: first a cold one (the metadata is parsed),
then a warm one (the parsed trigger and the reading are cached). Prints the files,
in the order first entered, and their count. A structure measure, not a timing.

    .venv/bin/python bench/request_path.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from bench.common import redis_server
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.server import ScalerServer
from scaler.settings import Settings

PACKAGE = str(Path(__file__).resolve().parents[1] / "scaler")


async def one_request(address: str, traced: list[str]) -> tuple[list[str], list[str]]:
    server = ScalerServer(Settings(host="127.0.0.1", port=0, metrics_port=-1, cache_ttl=60))
    await server.start()
    metadata = {"scalerType": "redis", "address": address, "listName": "jobs"}
    request = pb.GetMetricsRequest(
        scaledObjectRef=pb.ScaledObjectRef(name="job", namespace="team", scalerMetadata=metadata)
    )
    runs: list[list[str]] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        for _ in range(2):
            traced.clear()
            sys.setprofile(_profile(traced))
            try:
                await stub.GetMetrics(request, timeout=30)
            finally:
                sys.setprofile(None)
            runs.append(list(dict.fromkeys(traced)))
    await server.stop(grace=1)
    return runs[0], runs[1]


def _profile(traced: list[str]) -> Any:
    def profile(frame: FrameType, event: str, arg: object) -> None:
        name = frame.f_code.co_filename
        if event == "call" and name.startswith(PACKAGE) and "/proto/" not in name:
            traced.append(str(Path(name).relative_to(Path(PACKAGE).parent)))

    return profile


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with redis_server() as client:
        port = client.connection_pool.connection_kwargs["port"]
        cold, warm = asyncio.run(one_request(f"127.0.0.1:{port}", []))
    for label, files in (("cold (parsed)", cold), ("warm (cached)", warm)):
        print(f"{label}: {len(files)} files")
        for f in files:
            print(f"  {f}")


if __name__ == "__main__":
    main()
