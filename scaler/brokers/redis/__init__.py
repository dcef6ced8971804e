"""Redis lists and streams: ``redis``, ``redis-cluster``, ``redis-sentinel`` and the
``-streams`` variants, with the metadata keys, defaults and counting rules of KEDA's
built-in triggers (DESIGN §4).

Lists: the key's type picks the count — list or missing key LLEN, sorted set ZCARD,
set SCARD, hash HLEN; any other type is FAILED_PRECONDITION.

Streams, by metadata:
- no ``consumerGroup``: XLEN, target ``streamLength``;
- ``consumerGroup`` and ``lagCount`` != 0: the group's ``lag`` from XINFO GROUPS
  (Redis >= 7; a missing stream counts 0, a missing group counts XLEN), target
  ``lagCount``;
- ``consumerGroup`` and no ``lagCount``: the group's pending entries (XPENDING),
  target ``pendingEntriesCount``.
``activationLagCount`` is the activation threshold in all three modes.

One client (and its connection pool) per server identity — mode, addresses,
database, user, password digest, TLS — opened on first use and closed by
:meth:`RedisAdapter.aclose`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaler.brokers.pool import ClientBudget
    from scaler.settings import Settings
    from scaler.trigger import AnyAdapter


def open_adapter(*, settings: Settings, budget: ClientBudget) -> AnyAdapter:
    """The Redis adapter a server built from ``settings`` reads with (client imported here,
    so importing this package loads no client library)."""
    from scaler.brokers.redis.client import RedisAdapter

    return RedisAdapter(
        timeout=settings.read_timeout,
        max_connections=settings.redis_max_connections,
        budget=budget,
    )
