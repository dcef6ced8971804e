"""A grpc.aio ExternalScaler that does no work: the ceiling for our own server.

Prints ``PORT <n>`` on stdout once serving; stops on SIGTERM/SIGINT. With ``--heavy``
it first imports everything ``serve`` imports (the broker clients, Prometheus, the
Kubernetes client) and freezes the heap as ``serve`` does, to tell a bigger process
apart from the servicer's own work. ``--event-loop asyncio`` runs it on asyncio's own
loop instead of uvloop (serve's ``--event-loop``, same default).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import grpc

from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

_SPEC = pb.GetMetricSpecResponse(
    metricSpecs=[pb.MetricSpec(metricName="redis-jobs", targetSize=5, targetSizeFloat=5.0)]
)
_REPLY = pb.GetMetricsResponse(
    metricValues=[pb.MetricValue(metricName="redis-jobs", metricValue=10, metricValueFloat=10.0)]
)


class Noop(pb_grpc.ExternalScalerServicer):  # type: ignore[misc]
    async def GetMetricSpec(self, request: Any, context: Any) -> Any:
        return _SPEC

    async def GetMetrics(self, request: Any, context: Any) -> Any:
        return _REPLY

    async def IsActive(self, request: Any, context: Any) -> Any:
        return pb.IsActiveResponse(result=True)


async def main() -> None:
    if "--heavy" in sys.argv:
        import gc

        import kubernetes  # noqa: F401  (what --kubernetes loads)

        from scaler.brokers.pool import ClientBudget
        from scaler.registry import open_adapters
        from scaler.settings import Settings

        open_adapters(Settings(), ClientBudget(8))  # every broker's client module
        gc.collect()
        gc.freeze()
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_ExternalScalerServicer_to_server(Noop(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


def event_loop() -> str:
    args = sys.argv[1:]
    return args[args.index("--event-loop") + 1] if "--event-loop" in args[:-1] else "uvloop"


if __name__ == "__main__":
    if event_loop() == "asyncio":
        asyncio.run(main())
    else:
        import uvloop

        uvloop.run(main())
