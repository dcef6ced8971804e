"""Huey's instance for the worker Deployment of the ScaledObject tests:

    huey_consumer huey_app.huey

runs ``tasks.record`` (Huey names a task by its function's module and name).
REDIS_ADDRESS (host:port), REDIS_PASSWORD and HUEY_NAME (the queue) come from the
Pod's env."""

from __future__ import annotations

import os

from huey import RedisHuey
from tasks import record

_host, _, _port = os.environ.get("REDIS_ADDRESS", "127.0.0.1:6379").rpartition(":")
huey = RedisHuey(
    os.environ.get("HUEY_NAME", "huey"),
    host=_host,
    port=int(_port),
    password=os.environ.get("REDIS_PASSWORD") or None,
)
record_task = huey.task()(record)
