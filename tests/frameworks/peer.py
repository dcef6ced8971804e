"""The Python task frameworks as test peers: build a queue state with a framework's own
library, then count it with that library's own count API.

Runs in ``.venv-peers`` (the frameworks pin redis-py versions of their own), never
imports the scaler, and speaks JSON lines on stdin/stdout: one request
``{"framework", "url", "settings", "state"}`` per line, one answer per line,
``{"counts": {state: n}}`` or ``{"error": text}``. A request first empties the
database and lets go of what the previous one held (workers, consumers).

``state`` gives how many items to put in each condition (``ready``, ``due``
(scheduled, retried or delayed whose time has come), ``future``, ``active`` (held by
a worker of the framework) and, per framework, ``priorities`` and ``other`` (items
of another queue, which must not be counted).

The counts also give ``oldest``: when the oldest ready item became ready (Unix
seconds, from the framework's own job records: the enqueue time, or the due time of
scheduled work), or null when nothing is ready (``measure: age``, docs/age.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

HOUR = 3600
Counts = dict[str, Any]
_held: list[Callable[[], None]] = []


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def celery_state(url: str, s: dict[str, Any], st: dict[str, Any]) -> Counts:
    from celery import Celery

    options: dict[str, Any] = {}
    if s.get("steps") is not None:
        options["priority_steps"] = s["steps"]
    if s.get("sep") is not None:
        options["sep"] = s["sep"]
    if s.get("prefix") is not None:
        options["global_keyprefix"] = s["prefix"]
    app = Celery("peer", broker=url, broker_transport_options=options)
    q = s["queue"]
    for priority in st["priorities"]:
        app.send_task("peer.noop", queue=q, priority=priority)
    for _ in range(st.get("other", 0)):
        app.send_task("peer.noop", queue=q + "-other")
    with app.connection_for_write() as conn:
        size = conn.default_channel._size(q)  # kombu's own sum over every priority list
    app.close()
    return {"ready": size}


def rq_state(url: str, s: dict[str, Any], st: dict[str, Any]) -> Counts:
    from rq import Queue, Worker
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    conn = redis.Redis.from_url(url)
    q = Queue(s["queue"], connection=conn)
    other = Queue(s["queue"] + "-other", connection=conn)
    if st.get("retries"):
        # jobs that fail and are retried an hour later: RQ's own worker runs them
        from rq import Retry, SimpleWorker

        for _ in range(st["retries"]):
            q.enqueue("os.path.isdir", retry=Retry(max=2, interval=HOUR))  # no argument: fails
        SimpleWorker([q], connection=conn).work(burst=True)
    for _ in range(st["ready"]):
        q.enqueue("os.getcwd")
    for _ in range(st["due"]):
        q.enqueue_at(utcnow() - dt.timedelta(hours=1), "os.getcwd")
    for _ in range(st["future"]):
        q.enqueue_in(dt.timedelta(hours=1), "os.getcwd")
    for _ in range(st.get("other", 0)):
        other.enqueue("os.getcwd")
        other.enqueue_at(utcnow() - dt.timedelta(hours=1), "os.getcwd")
    for _ in range(st["active"]):
        # what a worker does before it runs a job, without running it
        worker = Worker([q], connection=conn)
        worker.register_birth()
        found = worker.dequeue_job_and_maintain_ttl(timeout=1)
        assert found is not None, "rq: no job to hold"
        job, _ = found
        worker.prepare_execution(job)
        worker.prepare_job_execution(job, remove_from_intermediate_queue=True)
    now = int(time.time())
    scheduled = ScheduledJobRegistry(queue=q)
    due_ids = scheduled.get_jobs_to_schedule(now, chunk_size=10**9)
    due = len(due_ids)
    started = StartedJobRegistry(queue=q)
    live = started.get_job_count(cleanup=False) - len(started.get_expired_job_ids(now))
    times = [job.enqueued_at.replace(tzinfo=dt.UTC).timestamp() for job in q.jobs]
    for job_id in due_ids:
        when = scheduled.get_scheduled_time(
            job_id.decode() if isinstance(job_id, bytes) else job_id
        )
        times.append(when.replace(tzinfo=dt.UTC).timestamp())
    return {
        "ready": q.count + due,
        "scheduled": scheduled.get_job_count(cleanup=False) - due,
        "active": live,
        "oldest": min(times, default=None),
    }


async def _arq_state(url: str, s: dict[str, Any], st: dict[str, Any]) -> Counts:
    from arq import Retry, Worker, create_pool
    from arq.connections import RedisSettings
    from arq.jobs import Job, JobStatus

    settings = RedisSettings.from_dsn(url)
    pool = await create_pool(settings, default_queue_name=s["queue"])
    release = asyncio.Event()
    started = 0

    async def hold(ctx: dict[str, Any]) -> None:
        nonlocal started
        started += 1
        await release.wait()

    hold.__qualname__ = "hold"

    async def again(ctx: dict[str, Any]) -> None:
        raise Retry(defer=HOUR)  # arq's own retry: the job is deferred an hour

    again.__qualname__ = "again"
    if st.get("retries"):
        jobs = [await pool.enqueue_job("again") for _ in range(st["retries"])]
        retrying = Worker(functions=[again], redis_pool=pool, queue_name=s["queue"],
                          poll_delay=0.01, handle_signals=False)  # fmt: skip
        running = asyncio.create_task(retrying.async_run())
        for _ in range(5000):  # until arq has deferred every one of them
            states = [await job.status() for job in jobs if job is not None]
            if all(state == JobStatus.deferred for state in states):
                break
            await asyncio.sleep(0.01)
        await retrying.close()
        running.cancel()
    for _ in range(st["active"]):
        await pool.enqueue_job("hold", _job_id=f"hold-{uuid.uuid4()}")
    worker = None
    if st["active"]:
        worker = Worker(
            functions=[hold], redis_pool=pool, queue_name=s["queue"], max_jobs=st["active"],
            poll_delay=0.01, handle_signals=False,
        )  # fmt: skip
        task = asyncio.create_task(worker.async_run())
        for _ in range(2000):
            if started >= st["active"]:
                break
            await asyncio.sleep(0.01)
        assert started == st["active"], f"arq: {started} of {st['active']} jobs started"
    for _ in range(st["ready"]):
        await pool.enqueue_job("noop")
    for _ in range(st["due"]):
        await pool.enqueue_job("noop", _defer_until=utcnow() - dt.timedelta(hours=1))
    for _ in range(st["future"]):
        await pool.enqueue_job("noop", _defer_by=dt.timedelta(hours=1))
    for _ in range(st.get("other", 0)):
        await pool.enqueue_job("noop", _queue_name=s["queue"] + "-other")
    counts: Counts = {"ready": 0, "scheduled": 0, "active": 0}
    scores: list[float] = []
    for job in await pool.queued_jobs(queue_name=s["queue"]):
        status = await Job(job.job_id, pool, _queue_name=s["queue"]).status()
        name = {JobStatus.queued: "ready", JobStatus.deferred: "scheduled",
                JobStatus.in_progress: "active"}[status]  # fmt: skip
        counts[name] += 1
        if status == JobStatus.queued and job.score is not None:
            scores.append(job.score / 1000)  # arq's due time, ms
    counts["oldest"] = min(scores, default=None)

    async def let_go() -> None:  # at the next request: the worker ends its jobs
        if worker is not None:
            release.set()
            await worker.close()
            task.cancel()
        await pool.aclose()

    _held.append(lambda: asyncio.run_coroutine_threadsafe(let_go(), _LOOP).result(60))
    return counts


#: arq's worker runs on, holding its jobs, between requests: in a loop of its own.
_LOOP = asyncio.new_event_loop()
threading.Thread(target=_LOOP.run_forever, daemon=True).start()


def arq_state(url: str, s: dict[str, Any], st: dict[str, Any]) -> Counts:
    return asyncio.run_coroutine_threadsafe(_arq_state(url, s, st), _LOOP).result(120)


def dramatiq_state(url: str, s: dict[str, Any], st: dict[str, Any]) -> Counts:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    namespace = s.get("prefix") or "dramatiq"
    broker = RedisBroker(url=url, namespace=namespace)
    q = s["queue"]
    broker.declare_queue(q)
    broker.declare_queue(q + "-other")

    def message(queue: str) -> Message[Any]:
        return Message(queue_name=queue, actor_name="noop", args=(), kwargs={}, options={})

    for _ in range(st["ready"] + st["active"]):
        broker.enqueue(message(q))
    future = 0
    for _ in range(st["due"]):
        broker.enqueue(message(q), delay=0)
    for _ in range(st["future"]):
        sent = broker.enqueue(message(q), delay=HOUR * 1000)
        future += sent.options["eta"] > time.time() * 1000
    for _ in range(st.get("other", 0)):
        broker.enqueue(message(q + "-other"))
    held = 0
    if st["active"]:
        consumer = broker.consume(q, prefetch=st["active"], timeout=1000)
        while held < st["active"]:
            if next(consumer) is not None:
                held += 1
        _held.append(consumer.close)
    total = RedisBroker(url=url, namespace=namespace).do_qsize(q)  # a broker with no acks
    # when each ready message became ready: Dramatiq's own decoding of the queue's
    # messages (the ids still queued) and of the delayed ones whose eta has come
    conn = redis.Redis.from_url(url)
    base = f"{namespace}:{q}"
    now_ms = time.time() * 1000
    times = []
    for message_id in conn.lrange(base, 0, -1):
        sent = Message.decode(conn.hget(f"{base}.msgs", message_id))
        times.append(max(sent.message_timestamp, sent.options.get("eta", 0)) / 1000)
    for data in conn.hvals(f"{base}.DQ.msgs"):
        sent = Message.decode(data)
        if sent.options["eta"] <= now_ms:
            times.append(sent.options["eta"] / 1000)
    broker.close()
    return {"ready": total - held - future, "scheduled": future, "active": held,
            "oldest": min(times, default=None)}  # fmt: skip


def huey_state(url: str, s: dict[str, Any], st: dict[str, Any]) -> Counts:
    from huey import PriorityRedisHuey, RedisHuey

    kind = PriorityRedisHuey if s.get("priority") else RedisHuey
    h = kind(s["queue"], url=url)
    other = RedisHuey(s["queue"] + "x", url=url)

    @h.task()
    def noop() -> None:
        pass

    @other.task()
    def elsewhere() -> None:
        pass

    for _ in range(st["ready"]):
        noop()
    for offset, n in ((-HOUR, st["due"]), (HOUR, st["future"])):
        for _ in range(n):
            task = noop.s()
            task.eta = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=offset)
            h.add_schedule(task)
    for _ in range(st.get("other", 0)):
        elsewhere()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    due = sum(1 for task in h.scheduled() if task.eta <= now)
    return {"ready": h.pending_count() + due, "scheduled": h.scheduled_count() - due}


#: the framework examples' task module (tasks.py) and apps
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "frameworks"


def rq_enqueue(url: str, s: dict[str, Any], items: list[str]) -> int:
    from rq import Queue
    from rq.registry import StartedJobRegistry

    q = Queue(s["queue"], connection=redis.Redis.from_url(url))
    for item in items:
        q.enqueue("tasks.record", item)
    return q.count + StartedJobRegistry(queue=q).get_job_count(cleanup=False)


async def _arq_enqueue(url: str, s: dict[str, Any], items: list[str]) -> int:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name=s["queue"])
    for item in items:
        await pool.enqueue_job("record_async", item)
    left = len(await pool.queued_jobs())
    await pool.aclose()
    return left


def arq_enqueue(url: str, s: dict[str, Any], items: list[str]) -> int:
    return asyncio.run_coroutine_threadsafe(_arq_enqueue(url, s, items), _LOOP).result(120)


def celery_enqueue(url: str, s: dict[str, Any], items: list[str]) -> int:
    """``tasks.record`` by name, as examples/frameworks/celery_app.py registers it; the
    unfinished count: the queue's list (kombu's Redis transport)."""
    from celery import Celery

    app = Celery("peer", broker=url)
    for item in items:
        app.send_task("tasks.record", args=[item], queue=s["queue"])
    app.close()
    return int(redis.Redis.from_url(url).llen(s["queue"]))


def dramatiq_enqueue(url: str, s: dict[str, Any], items: list[str]) -> int:
    """The ``record`` actor's messages (examples/frameworks/dramatiq_app.py); the
    unfinished count: the messages Dramatiq holds for the queue, fetched or not."""
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    for item in items:
        broker.enqueue(Message(queue_name=s["queue"], actor_name="record", args=(item,),
                               kwargs={}, options={}))  # fmt: skip
    left = int(redis.Redis.from_url(url).hlen(f"dramatiq:{s['queue']}.msgs"))
    broker.close()
    return left


def huey_enqueue(url: str, s: dict[str, Any], items: list[str]) -> int:
    """``tasks.record`` (examples/frameworks/huey_app.py) on the Huey named by the
    queue; the unfinished count: Huey's own ``pending_count``."""
    from huey import RedisHuey

    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    from tasks import record  # Huey's task name is the function's module and name

    h = RedisHuey(s["queue"], url=url)
    task = h.task()(record)
    for item in items:
        task(item)
    return int(h.pending_count())


#: "enqueue": put the examples' task (examples/frameworks/tasks.py) on the queue for
#: each item, with nothing flushed; answers the framework's count of the queue's
#: unfinished work (queued, scheduled or running). No items: the count alone.
ENQUEUERS: dict[str, Callable[[str, dict[str, Any], list[str]], int]] = {
    "rq": rq_enqueue,
    "arq": arq_enqueue,
    "celery": celery_enqueue,
    "dramatiq": dramatiq_enqueue,
    "huey": huey_enqueue,
}

BUILDERS: dict[str, Callable[[str, dict[str, Any], dict[str, Any]], Counts]] = {
    "celery": celery_state,
    "rq": rq_state,
    "arq": arq_state,
    "dramatiq": dramatiq_state,
    "huey": huey_state,
}


def main() -> None:
    # The answers own stdout: a framework's own logging (RQ's worker prints) goes to stderr.
    answers, sys.stdout = sys.stdout, sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        while _held:
            _held.pop()()
        try:
            answer: dict[str, Any]
            if request.get("op") == "enqueue":
                left = ENQUEUERS[request["framework"]](
                    request["url"], request["settings"], request["items"]
                )
                answer = {"unfinished": left}
            else:
                redis.Redis.from_url(request["url"]).flushdb()
                counts = BUILDERS[request["framework"]](
                    request["url"], request["settings"], request["state"]
                )
                answer = {"counts": counts}
        except Exception:  # the test shows the peer's own traceback
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
