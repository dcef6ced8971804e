"""A grpc.aio ExternalScaler that does no work: the ceiling for our own server.

Prints ``PORT <n>`` on stdout once serving; stops on SIGTERM/SIGINT. With ``--heavy``
it first imports everything ``serve`` imports (the broker clients, Prometheus, the
Kubernetes client) and freezes the heap as ``serve`` does, to tell a bigger process
apart from the servicer's own work. ``--event-loop asyncio`` runs it on asyncio's own
loop instead of uvloop (serve's ``--event-loop``, same default).

To look for a lower floor under grpc.aio's own cost: ``--grpc-option NAME=VALUE``
(repeatable; an integer VALUE is passed as one) adds a server option,
``--gc-threshold N`` sets the collector's first threshold (Python's is 700), and
``--sync-threads N`` serves from grpc's thread-pool server with N workers instead,
and ``--grpclib`` serves from grpclib (pure-Python HTTP/2, the h2 library) on the
same loop; it is not a dependency: ``.venv/bin/pip install grpclib`` first.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading
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


def flag_values(name: str) -> list[str]:
    """Every value given as ``name VALUE`` on the command line."""
    args = sys.argv[1:]
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]


def grpc_options() -> list[tuple[str, str | int]]:
    options: list[tuple[str, str | int]] = [("grpc.so_reuseport", 0)]
    for option in flag_values("--grpc-option"):
        name, _, value = option.partition("=")
        options.append((name, int(value) if value.lstrip("-").isdigit() else value))
    return options


class SyncNoop(pb_grpc.ExternalScalerServicer):  # type: ignore[misc]
    def GetMetricSpec(self, request: Any, context: Any) -> Any:
        return _SPEC

    def GetMetrics(self, request: Any, context: Any) -> Any:
        return _REPLY

    def IsActive(self, request: Any, context: Any) -> Any:
        return pb.IsActiveResponse(result=True)


def sync_main(threads: int) -> None:
    """grpc's thread-pool server: its completion-queue thread hands each call to one
    of ``threads`` workers."""
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(threads), options=grpc_options())
    pb_grpc.add_ExternalScalerServicer_to_server(SyncNoop(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(0)


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
    if "--grpclib" in sys.argv:
        await grpclib_main()
        return
    server = grpc.aio.server(options=grpc_options())
    pb_grpc.add_ExternalScalerServicer_to_server(Noop(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"PORT {port}", flush=True)
    await stopped()
    await server.stop(0)


async def stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class GrpclibNoop:
    """The same constant answers, served by grpclib's server."""

    async def _answer(self, stream: Any, reply: Any) -> None:
        await stream.recv_message()
        await stream.send_message(reply)

    async def spec(self, stream: Any) -> None:
        await self._answer(stream, _SPEC)

    async def metrics(self, stream: Any) -> None:
        await self._answer(stream, _REPLY)

    async def active(self, stream: Any) -> None:
        await self._answer(stream, pb.IsActiveResponse(result=True))

    def __mapping__(self) -> dict[str, Any]:
        from grpclib.const import Cardinality, Handler

        unary, ref = Cardinality.UNARY_UNARY, pb.ScaledObjectRef
        # the service's name from the proto, as scaler.service's SERVICE_NAME (not
        # imported: that would load what --heavy is there to load)
        base = f"/{pb.DESCRIPTOR.services_by_name['ExternalScaler'].full_name}/"
        return {
            base + "GetMetricSpec": Handler(self.spec, unary, ref, pb.GetMetricSpecResponse),
            base + "GetMetrics": Handler(
                self.metrics, unary, pb.GetMetricsRequest, pb.GetMetricsResponse
            ),
            base + "IsActive": Handler(self.active, unary, ref, pb.IsActiveResponse),
        }


async def grpclib_main() -> None:
    try:
        from grpclib.server import Server
    except ImportError:
        sys.exit("--grpclib needs grpclib: .venv/bin/pip install grpclib")
    server = Server([GrpclibNoop()])
    sock = socket.socket()  # bound here so the port is known, as grpc's ":0" finds one
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await server.start(sock=sock)
    print(f"PORT {port}", flush=True)
    await stopped()
    server.close()
    await server.wait_closed()


def event_loop() -> str:
    return (flag_values("--event-loop") or ["uvloop"])[-1]


if __name__ == "__main__":
    if threshold := flag_values("--gc-threshold"):
        import gc

        gc.set_threshold(int(threshold[-1]), *gc.get_threshold()[1:])
    if threads := flag_values("--sync-threads"):
        sync_main(int(threads[-1]))
    elif event_loop() == "asyncio":
        asyncio.run(main())
    else:
        import uvloop

        uvloop.run(main())
