"""``scalerType: rabbitmq``: KEDA's built-in RabbitMQ trigger, over AMQP or the
management HTTP API.

Protocols (``protocol: auto`` picks by the host URL's scheme):
- AMQP (``amqp://``, ``amqps://``): queue depth from a passive queue declare, on a
  connection kept open per broker identity. Each read uses its own short-lived
  channel, so a missing queue (which makes the broker close the channel) never
  disturbs reads of other queues on the same connection. The count comes from the
  broker every time: there is no client-side declare cache (aiormq, not a robust
  aio-pika channel). AMQP counts ready messages only.
- HTTP (``http://``, ``https://``): ``GET /api/queues/<vhost>/<queue>`` on the
  management API: ``messages`` (ready + unacknowledged) or ``messages_ready`` with
  ``excludeUnacknowledged``, plus publish and deliver_get rates; with ``useRegex``,
  one page of ``/api/queues/<vhost>?use_regex=true&name=...`` combined by
  ``operation`` (sum, avg rounding counts down, max starting at 0). Vhost and queue
  names are percent-encoded as path segments (``/`` vhost is ``%2F``).

Modes (``mode`` + ``value``, or neither = QueueLength 20, or legacy ``queueLength``),
each with KEDA's activation rule; see :class:`RabbitRule`. The management API's
numbers lag by its statistics interval (5 s by default); a queue whose statistics
have not been emitted yet is UNAVAILABLE, not 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaler.brokers.pool import ClientBudget
    from scaler.settings import Settings
    from scaler.trigger import AnyAdapter


def open_adapter(*, settings: Settings, budget: ClientBudget) -> AnyAdapter:
    """The RabbitMQ adapter a server built from ``settings`` reads with (client imported
    here, so importing this package loads no client library)."""
    from scaler.brokers.rabbitmq.client import RabbitAdapter

    return RabbitAdapter(timeout=settings.read_timeout, budget=budget)
