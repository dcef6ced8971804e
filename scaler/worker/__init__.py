"""The worker: the Job side of a queue (``keda-queue-scaler work -- CMD``).

Each item's life, on every broker: claimed under a lease → CMD runs with the item on
stdin and in ``$KQS_ITEM_FILE`` (the lease renewed while it runs) → acknowledged on
exit 0; on failure retried until ``max_attempts``, then dead-lettered; on SIGTERM
CMD gets ``grace`` and the item is released at once; after SIGKILL or a lost node
the lease ends and the item returns. At least once: an item is worked twice only
when a worker dies (or loses its lease) between CMD's success and the
acknowledgement. docs/worker.md has the guarantees, the exit codes and each broker's
mechanism.

In-process use (this package imports no gRPC)::

    from scaler.worker import Options, enqueue, open_source, work

    meta = {"scalerType": "redis", "address": "127.0.0.1:6379", "listName": "jobs"}
    await enqueue(meta, [b"resize 42.png"])
    source = open_source(meta, environ=os.environ, lease=60)
    code = await work(source, Options(cmd=["./resize"]))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from scaler.worker.config import open_source
from scaler.worker.run import Exit, Options, Worker, work
from scaler.worker.source import Claim, Source


async def enqueue(
    meta: Mapping[str, str],
    payloads: Iterable[bytes],
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 (each broker call's own limit, passed on)
) -> list[str]:
    """Add each payload to the queue ``meta`` names, with an id and its enqueue time;
    the ids, in order."""
    source = open_source(meta, environ=os.environ if environ is None else environ,
                         lease=60.0, timeout=timeout)  # fmt: skip
    try:
        return [await source.put(payload) for payload in payloads]
    finally:
        await source.aclose()


__all__ = ["Claim", "Exit", "Options", "Source", "Worker", "enqueue", "open_source", "work"]
