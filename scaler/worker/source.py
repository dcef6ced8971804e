"""What every broker gives the worker: one small async Protocol, and the claim it hands out.

A :class:`Source` is opened from a trigger's metadata (``scaler.worker.config``) and
speaks its broker's own mechanism (docs/worker.md has the table):

    check()         at start: the queue can be reached (and its dead-letter found)
    claim(wait)     the next item, held by this worker under a lease, or None after
                    ``wait`` seconds of an empty queue
    renew(claim)    extend the lease (the heartbeat while CMD runs); False when the
                    claim was lost (the lease had ended and the item went back)
    ack(claim)      done: remove the item for good
    retry(claim)    CMD failed: put the item back for another attempt now
    release(claim)  stop without an outcome (SIGTERM): put the item back now, and do
                    not count this attempt
    dead_letter(c)  CMD failed for the last time: move the item where failed items go
    sweep()         return items whose leases have ended (brokers that do not do it
                    themselves); the number returned
    put(payload)    enqueue one item with an id and its enqueue time

Every call raises :class:`scaler.errors.ScalerError` subclasses on a broker failure,
with messages that name the broker and never a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Claim:
    """One claimed item: what CMD receives and what the broker needs to settle it."""

    #: A stable id: the enqueue helper's, else the broker's (SQS MessageId, stream
    #: entry id, RabbitMQ message_id or delivery tag), else a digest of the payload.
    item_id: str
    #: The payload CMD receives (the enqueue helper's envelope removed).
    payload: bytes
    #: This claim's number among the item's claims: 1 the first time.
    attempt: int
    #: When the enqueue helper (or the broker) recorded the item, in Unix seconds.
    enqueued_at: float | None = None
    #: The broker's handle (a claim id, a receipt handle, a delivery tag).
    handle: object = field(default=None, repr=False)


class Source(Protocol):
    """One queue, as the worker drives it (see the module docstring)."""

    #: How the queue is named in messages and logs (no credentials).
    where: str

    async def check(self) -> None: ...
    async def claim(self, wait: float) -> Claim | None: ...
    async def renew(self, claim: Claim) -> bool: ...
    async def ack(self, claim: Claim) -> None: ...
    async def retry(self, claim: Claim) -> None: ...
    async def release(self, claim: Claim) -> None: ...
    async def dead_letter(self, claim: Claim) -> None: ...
    async def sweep(self) -> int: ...
    async def put(self, payload: bytes) -> str: ...
    async def aclose(self) -> None: ...
