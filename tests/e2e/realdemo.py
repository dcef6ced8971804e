"""``keda-queue-scaler demo --real-keda``: the demo with the real KEDA operator.

Starts the end-to-end cluster (etcd, kube-apiserver, kube-controller-manager, KEDA's
operator and the node stand-in, built once by scripts/e2e-cluster), a local Redis
and the scaler, applies the Redis list example ScaledJob, pushes a burst of work and
prints each of KEDA's polls as it happens, with what our model predicted for it,
until the queue is drained. Ctrl-C stops everything it started.

    python -m tests.e2e.realdemo [--items 12] [--strategy accurate]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

from tests.brokers import RedisProcess
from tests.e2e import kube
from tests.e2e.cluster import Cluster, build_binaries, python_worker
from tests.e2e.conftest import WORKER_IMAGE, start_scaler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=12, help="work items to push [12]")
    parser.add_argument("--strategy", default="accurate",
                        choices=("default", "accurate", "eager"), help="[accurate]")  # fmt: skip
    parser.add_argument("--work-seconds", type=float, default=3.0, help="per item [3]")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after [300] s")
    args = parser.parse_args(argv)
    print("building (first run only) and starting etcd, kube-apiserver, "
          "kube-controller-manager and the KEDA operator ...", flush=True)  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="kqs-real-keda-"))
    cluster = Cluster(workdir / "cluster", build_binaries(), start_delay=2.0,
                      images={WORKER_IMAGE: python_worker()})  # fmt: skip
    cluster.workdir.mkdir()
    password = secrets.token_hex(8)
    redis = RedisProcess(workdir / "redis", password=password)
    redis.workdir.mkdir(exist_ok=True)
    scaler = None
    try:
        cluster.start()
        redis.start()
        # the checkout's own scaler (the e2e suite runs the image's install instead)
        scaler = start_scaler(workdir, values=None,
                              command=[sys.executable, "-m", "scaler", "serve"])  # fmt: skip
        print(f"cluster {cluster.server}, KEDA operator log {cluster.keda.log}, "
              f"scaler {scaler.address}, Redis {redis.address}", flush=True)  # fmt: skip
        ns = kube.namespace(cluster, "demo")
        kube.secret(cluster, ns, "redis-auth", {"password": password})
        doc = kube.example("redis-list-scaledjob.yaml")
        doc["spec"]["pollingInterval"] = 2
        doc["spec"]["maxReplicaCount"] = 5
        doc["spec"]["scalingStrategy"] = {"strategy": args.strategy}
        doc["spec"]["triggers"][0]["metadata"]["scalerAddress"] = scaler.address
        kube.set_env(doc, REDIS_ADDRESS=redis.address,
                     WORK_COMMAND=f"sh -c 'sleep {args.work_seconds:g}; cat'")  # fmt: skip
        name = doc["metadata"]["name"]
        client = redis.client()
        client.rpush("jobs", *(f"item-{i}" for i in range(args.items)))
        kube.create(cluster, ns, doc)
        print(f"pushed {args.items} items; KEDA polls every 2 s (strategy {args.strategy}, "
              "maxReplicaCount 5):", flush=True)  # fmt: skip
        print(f"{'poll':>4} {'queue':>5} {'running':>7} {'pending':>7} {'KEDA':>5} {'model':>5}")
        shown = 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            cluster.check_alive()
            seen = kube.polls(cluster, ns, name)
            for poll in seen[shown:]:
                queue = sum(v for s in poll.specs for v in s.values)
                model = kube.predict(doc, poll).jobs
                print(f"{shown:>4} {queue:>5g} {poll.running:>7} {poll.pending:>7} "
                      f"{poll.decided:>5} {model:>5}", flush=True)  # fmt: skip
                shown += 1
            idle = client.llen("jobs") == 0 and client.llen("jobs:processing") == 0
            if idle and seen and seen[-1].running == 0:
                created = sum(p.created for p in seen)
                print(f"drained: {args.items} items, {created} Jobs created by KEDA "
                      "(a Job that finds the queue empty exits at once)", flush=True)  # fmt: skip
                return 0
            time.sleep(0.5)
        print(f"not drained after {args.timeout:g} s", flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping KEDA, the cluster, the scaler and Redis", flush=True)
        return 130
    finally:
        if scaler is not None:
            scaler.stop()
        redis.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
