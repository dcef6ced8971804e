"""The task module of the framework examples (examples/*-scaledjob.yaml): one task,
``record``, that does the work on an item and prints it, for RQ and arq
(arq_worker.py), whose own workers run it in burst mode (they exit once the queue is
empty).

    rq worker --burst --url redis://$REDIS_ADDRESS/0 default
    arq arq_worker.WorkerSettings --burst     # REDIS_ADDRESS, ARQ_QUEUE

In your image this is your own task module; only the worker command matters.
"""

from __future__ import annotations

from typing import Any


def record(item: str) -> str:
    """The work: here, print the item (the end-to-end test reads the Job's log)."""
    print(f"done {item}", flush=True)
    return item


async def record_async(ctx: dict[str, Any], item: str) -> str:
    """arq's form of ``record`` (arq passes its context first)."""
    return record(item)
