"""``demo --queue-format F``: the demo with a task framework's own queue and worker.

The items are tasks enqueued by the framework's own library, the ScaledJob's trigger
counts them with ``queueFormat`` (docs/frameworks.md), and every Job runs the
framework's own worker in its burst mode, which exits once the queue is empty: RQ
(``rq worker --burst``), arq (``--burst``) and BullMQ (a Worker that closes when the
queue is drained). Celery, Dramatiq, Huey and Sidekiq have no such mode, so their
workers cannot end a Job; the demo says so.

The frameworks are not the scaler's dependencies: RQ and arq are imported by
``--framework-python`` (a Python that has them), BullMQ is required by Node from
``--node-modules``. ``make demo-framework F=rq`` passes the ones ``make peers``
installs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

#: The frameworks whose own worker can end a Job (each is also the module it loads).
RUNNABLE = ("rq", "arq", "bullmq")
QUEUES = {"rq": "default", "arq": "arq:queue", "bullmq": "demo"}

_TASKS = '''"""The demo's task: work on an item for WORK_SECONDS, then say so."""
import os, time


def record(item):
    time.sleep(float(os.environ.get("WORK_SECONDS", "0")))
    print(f"done {item}", flush=True)


async def record_async(ctx, item):
    record(item)
'''

_ARQ = '''"""arq's worker settings for the demo: arq demo_arq.WorkerSettings --burst."""
import os
from arq.connections import RedisSettings
from demo_tasks import record_async

host, _, port = os.environ["REDIS_ADDRESS"].rpartition(":")


class WorkerSettings:
    functions = [record_async]
    queue_name = "arq:queue"
    redis_settings = RedisSettings(host=host, port=int(port))
    max_jobs = 1
'''

_ENQUEUE = '''"""Enqueue the demo's tasks with the framework's own library:
python demo_enqueue.py FORMAT REDIS_ADDRESS QUEUE FROM TO"""
import asyncio, sys

fmt, address, queue, start, stop = sys.argv[1:6]
items = [f"item-{i}" for i in range(int(start), int(stop))]
if fmt == "rq":
    from redis import Redis
    from rq import Queue

    q = Queue(queue, connection=Redis.from_url(f"redis://{address}/0"))
    for item in items:
        q.enqueue("demo_tasks.record", item)
else:
    from arq import create_pool
    from arq.connections import RedisSettings

    async def main():
        host, _, port = address.rpartition(":")
        pool = await create_pool(RedisSettings(host=host, port=int(port)),
                                 default_queue_name=queue)
        for item in items:
            await pool.enqueue_job("record_async", item)
        await pool.aclose()

    asyncio.run(main())
'''

_BULLMQ = """// The demo's BullMQ side: node demo_bullmq.cjs enqueue ADDRESS QUEUE FROM TO, or
// node demo_bullmq.cjs work ADDRESS QUEUE (a Worker that exits once the queue is drained).
const { Queue, Worker } = require("bullmq");
const [mode, address, name, from, to] = process.argv.slice(2);
const [host, port] = address.split(":");
const connection = { host, port: Number(port) };
const seconds = Number(process.env.WORK_SECONDS || "0");

async function main() {
  if (mode === "enqueue") {
    const queue = new Queue(name, { connection });
    for (let i = Number(from); i < Number(to); i++) {
      await queue.add("record", { item: `item-${i}` });
    }
    await queue.close();
    return;
  }
  const worker = new Worker(name, async (job) => {
    await new Promise((r) => setTimeout(r, seconds * 1000));
    console.log(`done ${job.data.item}`);
  }, { connection, concurrency: 1 });
  worker.on("drained", async () => { await worker.close(); process.exit(0); });
}
main().catch((err) => { console.error(err); process.exit(1); });
"""


@dataclass(frozen=True)
class Framework:
    """One framework's side of the demo: how to enqueue and how a Job works."""

    name: str
    redis_address: str
    workdir: Path
    python: str
    node_modules: str
    work_seconds: float

    @property
    def queue(self) -> str:
        return QUEUES[self.name]

    def metadata(self) -> dict[str, str]:
        return {"queueFormat": self.name, "queueName": self.queue}

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "REDIS_ADDRESS": self.redis_address,
               "WORK_SECONDS": f"{self.work_seconds:g}",
               "PYTHONPATH": str(self.workdir)}  # fmt: skip
        if self.node_modules:
            env["NODE_PATH"] = self.node_modules
        return env

    def _enqueue_argv(self, start: int, stop: int) -> list[str]:
        if self.name == "bullmq":
            return ["node", "demo_bullmq.cjs", "enqueue", self.redis_address, self.queue,
                    str(start), str(stop)]  # fmt: skip
        return [self.python, "demo_enqueue.py", self.name, self.redis_address, self.queue,
                str(start), str(stop)]  # fmt: skip

    def worker_argv(self) -> list[str]:
        """The framework's own worker, in the mode that exits once the queue is empty."""
        if self.name == "bullmq":
            return ["node", "demo_bullmq.cjs", "work", self.redis_address, self.queue]
        tool = str(Path(self.python).parent / self.name)
        if self.name == "rq":
            return [tool, "worker", "--burst", "--url", f"redis://{self.redis_address}/0",
                    self.queue]  # fmt: skip
        return [tool, "demo_arq.WorkerSettings", "--burst"]

    async def enqueue(self, start: int, stop: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._enqueue_argv(start, stop), cwd=self.workdir, env=self._env(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name} could not enqueue: {err.decode()[-400:]}")

    async def start_worker(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.worker_argv(), cwd=self.workdir, env=self._env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip


async def prepare(
    name: str, redis_address: str, workdir: Path, *, python: str, node_modules: str,
    work_seconds: float,
) -> Framework:  # fmt: skip
    """Check the framework can run here and write the demo's app into ``workdir``;
    ValueError saying what is missing."""
    if name not in RUNNABLE:
        raise ValueError(
            f"--queue-format {name}: the demo runs rq, arq and bullmq, whose own workers "
            "exit once the queue is empty (burst mode) and so can end a Job; "
            f"{name}'s worker has no such mode"
        )
    if name == "bullmq":
        if shutil.which("node") is None:
            raise ValueError("--queue-format bullmq needs Node.js (node on the PATH)")
        check = ["node", "-e", "require('bullmq')"]
    else:
        check = [python, "-c", f"import {name}"]
    env = {**os.environ, "NODE_PATH": node_modules} if node_modules else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *check, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        loaded = await asyncio.wait_for(proc.wait(), 60) == 0
    except (OSError, TimeoutError):
        loaded = False
    if not loaded:
        where = (f"--node-modules {node_modules or '(NODE_PATH)'}" if name == "bullmq"
                 else f"--framework-python {python}")  # fmt: skip
        raise ValueError(
            f"--queue-format {name} needs {name} installed: {where} cannot load it "
            f"(make demo-framework F={name} uses the one make peers installs)"
        )
    files = {"demo_tasks.py": _TASKS, "demo_arq.py": _ARQ, "demo_enqueue.py": _ENQUEUE,
             "demo_bullmq.cjs": _BULLMQ}  # fmt: skip
    for file, text in files.items():
        (workdir / file).write_text(text, encoding="utf-8")
    return Framework(name, redis_address, workdir, python, node_modules, work_seconds)
