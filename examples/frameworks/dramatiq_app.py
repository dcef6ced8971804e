"""Dramatiq's broker and actor for the worker Deployment of the ScaledObject tests:

    dramatiq dramatiq_app --processes 1 --threads 1 -Q $DRAMATIQ_QUEUE

runs the ``record`` actor (tasks.record). REDIS_ADDRESS (host:port), REDIS_PASSWORD
and DRAMATIQ_QUEUE come from the Pod's env."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from tasks import record

_host, _, _port = os.environ.get("REDIS_ADDRESS", "127.0.0.1:6379").rpartition(":")
broker = RedisBroker(host=_host, port=int(_port), password=os.environ.get("REDIS_PASSWORD") or None)
dramatiq.set_broker(broker)
record_actor = dramatiq.actor(
    record, actor_name="record", queue_name=os.environ.get("DRAMATIQ_QUEUE", "default")
)
