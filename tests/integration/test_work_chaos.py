"""Chaos for ``keda-queue-scaler work`` (slow: ``make chaos``, and ``make slow`` in CI).

Per broker: 2,000 items (SQS: 800, below), 8 workers at a time (each up to 25
items), a random 20% of them SIGKILLed at a random moment (before their first
claim, while CMD runs, or after CMD ended, racing the acknowledgement), and 5%
SIGTERMed. Required: every
item completed at least once, none lost (nothing waiting, held or dead-lettered at
the end, after a sweep), and no more duplicates than kills. Every figure is printed.

SQS runs fewer items because its emulator scans every message of a queue on each
call (moto's SQS models: each message's visibility and delay, read from the clock):
one SendMessage took 5 ms on an empty queue and 50 ms at 1,000 messages, so 2,000
items cost minutes in enqueueing alone and the run took 8 to 9 minutes, once past
the enqueue's 2-minute limit. 800 keep about 30 workers' worth of kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.workq import (
    ROOT_ENV,
    WorkQueue,
    cli,
    enqueue,
    open_queue,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ITEMS = int(os.environ.get("CHAOS_ITEMS", "2000"))
SQS_ITEMS = int(os.environ.get("CHAOS_SQS_ITEMS", "800"))
WORKERS = 8
PER_WORKER = 25
KILL, TERM = 0.20, 0.05


@pytest.fixture(params=("redis-list", "redis-stream", "sqs", "rabbitmq"))
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[WorkQueue]:
    made = await open_queue(request, request.param, "chaos")
    try:
        yield made
    finally:
        await made.close()


async def test_chaos(queue: WorkQueue, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "21")))
    items = min(ITEMS, SQS_ITEMS) if queue.broker == "sqs" else ITEMS
    payloads = [f"item-{i:05d}".encode() for i in range(items)]
    began = time.monotonic()
    await enqueue(queue, payloads)
    log, marks = tmp_path / "done.log", tmp_path / "marks"
    marks.mkdir()
    # CMD marks its start and end per worker (its parent), records the item, and takes
    # 0-20 ms; SIGTERM ends it (sh's default), so a terminated worker releases its item.
    cmd = ["sh", "-c", f'm={marks}/$PPID; echo s >> "$m"; sleep 0.0$(( $$ % 3 )); '
           f'printf "%s\\n" "$(cat)" >> {log}; echo e >> "$m"']  # fmt: skip
    fate: Counter[str] = Counter()
    # A lease shorter than the broker's own answer time makes duplicates no kill
    # explains: SQS starts a message's visibility timeout when it hands it out, and the
    # emulator on a loaded machine took seconds to answer (34 duplicates for 18 kills
    # at a 2 s lease in one CI run). 10 s covers that; the Redis and RabbitMQ leases
    # count from our own claim.
    lease = "10" if queue.broker == "sqs" else "2"
    launched = 0
    lives: list[float] = []  # how long unkilled workers lived: kills land across a life

    async def one_worker() -> int:
        nonlocal launched
        launched += 1
        proc = await asyncio.create_subprocess_exec(
            *cli("work", *queue.meta_args(), "--max-items", str(PER_WORKER), "--lease", lease,
                 "--max-attempts", "20", "--grace", "2", "--wait", "1", "--", *cmd),
            env={**ROOT_ENV, **queue.env}, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            return await fated(proc)
        finally:  # a failing or cancelled slot leaves no worker behind to outlive the test
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def fated(proc: asyncio.subprocess.Process) -> int:
        roll = rng.random()
        born = time.monotonic()
        if roll < KILL + TERM:
            life = sum(lives[-20:]) / len(lives[-20:]) if lives else 1.5
            try:
                await asyncio.wait_for(proc.wait(), rng.uniform(0.0, life))
            except TimeoutError:
                sent = signal.SIGKILL if roll < KILL else signal.SIGTERM
                try:
                    proc.send_signal(sent)
                except ProcessLookupError:  # it exited as the timer fired: no kill
                    return await proc.wait()
                mark = marks / str(proc.pid)
                state = mark.read_text().split()[-1:] if mark.exists() else []
                phase = {(): "before its first claim", ("s",): "while CMD ran",
                         ("e",): "after CMD ended"}[tuple(state)]  # fmt: skip
                fate[f"{sent.name} {phase}"] += 1
            return await proc.wait()
        code = await proc.wait()
        if code == 0:
            lives.append(time.monotonic() - born)
        return code

    async def drained() -> bool:
        return await queue.ready() == 0 and await queue.held() == 0

    async def slot() -> None:
        while True:
            code = await one_worker()
            if code == 3 and await drained():
                return

    async with asyncio.TaskGroup() as slots:  # one failing slot cancels the others
        for _ in range(WORKERS):
            slots.create_task(slot())
    # a last worker: its start sweeps what killed workers left (Redis lists)
    final = await asyncio.create_subprocess_exec(
        *cli("work", *queue.meta_args(), "--wait", "3", "--lease", lease, "--", *cmd),
        env={**ROOT_ENV, **queue.env}, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await final.wait()

    done = log.read_bytes().splitlines()
    seen = Counter(done)
    duplicates = len(done) - len(seen)
    kills = sum(n for k, n in fate.items() if k.startswith("SIGKILL"))
    terms = sum(n for k, n in fate.items() if k.startswith("SIGTERM"))
    left = (await queue.ready(), await queue.held(), len(await queue.dead()))
    print(f"\n[chaos {queue.broker}] {items} items, {launched} workers ({WORKERS} at a time, "
          f"up to {PER_WORKER} items each); {kills} SIGKILLed, {terms} SIGTERMed: "
          + ", ".join(f"{n} {k}" for k, n in sorted(fate.items())))  # fmt: skip
    print(f"[chaos {queue.broker}] completed {len(set(done))}/{items} items at least once, "
          f"{len(done)} completions, {duplicates} duplicates, "
          f"{len(set(payloads) - set(seen))} lost; left waiting {left[0]}, held {left[1]}, "
          f"dead-lettered {left[2]}; {time.monotonic() - began:.0f} s")  # fmt: skip
    assert set(seen) == set(payloads)
    assert left == (0, 0, 0)
    assert duplicates <= kills + terms
