"""A minimal asyncio HTTP server for ``GET /metrics`` (Prometheus text format).

prometheus_client's threaded server blocks the event loop on shutdown (it polls
every 0.5 s); this one stops at once. The page is rendered in a worker thread, one
scrape at a time, so a large page never holds up the event loop that answers KEDA.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

_MAX_REQUEST_HEAD = 16 * 1024


class MetricsHTTPServer:
    def __init__(self, registry: CollectorRegistry, *, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._render = asyncio.Lock()  # one render thread at a time
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_REQUEST_HEAD:
                raise ValueError("request head too large")
            method, _, rest = head.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            if method not in (b"GET", b"HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path in (b"/metrics", b"/"):
                status, ctype = "200 OK", CONTENT_TYPE_LATEST
                async with self._render:
                    body = await asyncio.to_thread(generate_latest, self._registry)
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"see /metrics\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != b"HEAD":
                writer.write(body)
            await writer.drain()
        except (
            TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ConnectionError,
        ):  # fmt: skip
            pass  # a broken or slow client: drop it
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
