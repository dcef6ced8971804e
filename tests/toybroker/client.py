"""Reads of the toy broker: the number of lines of a file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scaler.errors import QueueNotFound
from tests.toybroker.metadata import LinesQuery


class LinesAdapter:
    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self.reads = 0

    async def read(self, query: LinesQuery) -> float:
        self.reads += 1
        try:
            text = await asyncio.to_thread(Path(query.path).read_text)
        except FileNotFoundError:
            raise QueueNotFound(f'no file "{query.path}"') from None
        return float(len(text.splitlines()))

    async def aclose(self) -> None:
        pass
