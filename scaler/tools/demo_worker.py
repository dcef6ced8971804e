"""One demo Job: ``python -m scaler.tools.demo_worker REDIS_ADDRESS LIST SECONDS``.

It LPOPs one item, works on it for SECONDS and exits 0, or exits 3 when the list was
empty. It imports only redis-py, so that a Job starts in a fraction of a second (the
demo's "pending" column is this start-up, as a Pod's is its image pull and start).
"""

from __future__ import annotations

import sys
import time


def run_job(redis_address: str, queue: str, work_seconds: float) -> int:
    import redis

    host, _, port = redis_address.rpartition(":")
    client = redis.Redis(host=host, port=int(port), socket_timeout=5)
    item = client.lpop(queue)
    client.close()
    print("took" if item is not None else "none", flush=True)  # the demo counts us running
    if item is None:
        return 3
    time.sleep(work_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(sys.argv[1], sys.argv[2], float(sys.argv[3])))
