"""``scalerType: memory`` — named in-process counters, for tests and demos.

Metadata keys: ``queueName`` (required), ``queueLength`` (5),
``activationQueueLength`` (0). The store is held by the adapter instance, so a
test or the demo that owns the server can push and take items, inject a delay or
an error, and count reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaler.brokers.pool import ClientBudget
    from scaler.settings import Settings
    from scaler.trigger import AnyAdapter


def open_adapter(*, settings: Settings, budget: ClientBudget) -> AnyAdapter:
    """The in-memory adapter (only with ``--enable-memory``: tests and the demo)."""
    from scaler.brokers.memory.client import MemoryAdapter

    return MemoryAdapter()
