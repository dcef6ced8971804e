"""A toy broker that lives in the test folder alone: the lines of a file are its queue.

It is what adding a broker costs: this package (metadata, client, ``open_adapter``)
and one row in the table a server is given (tests/unit/test_registry.py). Nothing
in ``scaler/`` changes for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaler.brokers.pool import ClientBudget
    from scaler.settings import Settings
    from scaler.trigger import Adapter


def open_adapter(*, settings: Settings, budget: ClientBudget) -> Adapter:
    from tests.toybroker.client import LinesAdapter

    return LinesAdapter(timeout=settings.read_timeout)
