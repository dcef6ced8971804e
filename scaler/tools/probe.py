"""``keda-queue-scaler probe``: ask a scaler's gRPC health service, as a kubelet's
gRPC probe or an operator would, over the shared client's TLS settings."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scaler.tools.client import channel_options, credentials


def probe(
    address: str,
    *,
    service: str,
    timeout: float,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    server_name: str | None = None,
) -> int:
    """0 when the service answers SERVING, else 1; one line on stdout or stderr."""
    creds = credentials(ca, cert, key)
    if creds is not None:
        channel = grpc.secure_channel(address, creds, options=channel_options(server_name))
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as exc:
            print(f"probe {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"probe {address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
