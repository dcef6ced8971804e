"""arq's worker settings for examples/arq-scaledjob.yaml:
``arq arq_worker.WorkerSettings --burst`` runs the jobs that are due, then exits.
REDIS_ADDRESS (host:port), REDIS_PASSWORD and ARQ_QUEUE come from the Job's env."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import RedisSettings
from tasks import record_async


def _redis_settings() -> RedisSettings:
    host, _, port = os.environ.get("REDIS_ADDRESS", "127.0.0.1:6379").rpartition(":")
    return RedisSettings(host=host, port=int(port), password=os.environ.get("REDIS_PASSWORD"))


class WorkerSettings:
    """``arq arq_worker.WorkerSettings --burst``: run what is due, then exit."""

    functions: ClassVar[list[Any]] = [record_async]
    queue_name = os.environ.get("ARQ_QUEUE", "arq:queue")
    redis_settings = _redis_settings()
    max_jobs = 4
