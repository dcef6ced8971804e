"""``keda-queue-scaler demo``: the whole pipeline on one machine.

It starts a local ``redis-server`` on a free loopback port (or, without one, the
in-memory queue), our gRPC server, and the KEDA ScaledJob loop of
:mod:`scaler.keda.scaledjob` at a short polling interval; pushes a burst of work; and
runs every Job KEDA would create as a local worker process that takes one item
(LPOP) and works on it for a while. A live view shows each poll until the queue
is drained. Ctrl-C stops everything it started. With ``inflow`` the items arrive
steadily instead of at once, so scaling strategies that count running Jobs
differently (``default`` against ``accurate``) visibly keep different backlogs.

With the in-memory queue the Jobs are tasks inside this process (another process
cannot reach it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from redis.asyncio import Redis

from scaler.brokers.memory.client import MemoryAdapter
from scaler.brokers.pool import ClientBudget
from scaler.keda.manifest import ScaledJob, TriggerSpec
from scaler.keda.scaledjob import STRATEGIES, ScaledJobSpec, ScalingStrategy, decide
from scaler.registry import open_adapters
from scaler.server import ScalerServer
from scaler.settings import Settings
from scaler.tools.client import Caller
from scaler.tools.demo_frameworks import Framework, prepare

QUEUE = "demo-jobs"
# Ctrl-C, kill, and the terminal closing: each stops everything the demo started.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class DemoOptions:
    items: int = 20
    polling_interval: float = 1.0
    max_replicas: int = 5
    strategy: str = "accurate"
    work_seconds: float = 2.0
    inflow: float = 0.0  # items per second; 0 = all items at once (a burst)
    backend: str = "auto"  # auto | redis | memory
    queue_format: str = "list"  # list, or a framework whose worker can end a Job
    framework_python: str = ""  # a Python with RQ / arq (default: this one)
    node_modules: str = ""  # where Node finds bullmq (default: NODE_PATH)
    worker: str = "pop"  # pop: a toy LPOP; work: `keda-queue-scaler work` (claim, lease, ack)
    plain: bool = False
    timeout: float = 300.0
    # A simulated clock instead of the wall: the same scaler (over gRPC, the in-memory
    # queue) and KEDA arithmetic, Jobs as a model that takes its item start_delay
    # seconds after KEDA creates it. The same options give the same rows on any machine.
    simulate: bool = False
    start_delay: float = 1.0


@dataclass
class Stats:
    polls: int = 0
    created: int = 0
    finished: int = 0
    idle: int = 0  # Jobs that found nothing to do
    failed: int = 0
    peak_running: int = 0
    longest_queue: float = 0.0
    history: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def local_redis() -> AsyncIterator[str]:
    """A throw-away redis-server on 127.0.0.1, stopped on exit."""
    from redis.asyncio import Redis

    binary = shutil.which("redis-server")
    assert binary is not None
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="kqs-demo-") as workdir:
        proc = await asyncio.create_subprocess_exec(
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client = Redis(port=port)
            for _ in range(200):
                try:
                    await client.ping()
                    break
                except OSError:
                    await asyncio.sleep(0.025)
            await client.aclose()
            yield f"127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


class Jobs:
    """The Jobs KEDA created: worker processes (Redis) or tasks (memory)."""

    def __init__(self, options: DemoOptions, stats: Stats, *, redis: str | None,
                 memory: MemoryAdapter | None,
                 framework: Framework | None = None) -> None:  # fmt: skip
        self._options = options
        self._stats = stats
        self._redis = redis
        self._memory = memory
        self._framework = framework
        self._running: set[asyncio.Task[None]] = set()
        self._procs: set[asyncio.subprocess.Process] = set()
        self.pending = 0  # started, but not yet holding an item (KEDA: pod not running)

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self, count: int) -> None:
        for _ in range(count):
            self.pending += 1
            task = asyncio.create_task(self._run_one())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            self._stats.created += 1
        self._stats.peak_running = max(self._stats.peak_running, self.running)

    async def _run_one(self) -> None:
        if self._framework is not None:
            await self._run_framework_worker(self._framework)
            return
        if self._memory is not None:
            self.pending -= 1
            if not self._memory.take(QUEUE):
                self._stats.idle += 1
                return
            await asyncio.sleep(self._options.work_seconds)
            self._stats.finished += 1
            return
        if self._options.worker == "work":  # the real worker: CMD prints "took", then works
            argv = [sys.executable, "-m", "scaler", "work", "--meta", "scalerType=redis",
                    "--meta", f"address={self._redis}", "--meta", f"listName={QUEUE}",
                    "--wait", "0", "--lease", "30", "--log-level", "warning", "--", "sh", "-c",
                    f"echo took; sleep {self._options.work_seconds}"]  # fmt: skip
        else:
            argv = [sys.executable, "-m", "scaler.tools.demo_worker", str(self._redis), QUEUE,
                    str(self._options.work_seconds)]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        self._procs.add(proc)
        started = True
        try:
            assert proc.stdout is not None
            await proc.stdout.readline()  # "took" once it holds an item, or EOF
            self.pending -= 1
            started = False
            code = await proc.wait()
        finally:
            if started:
                self.pending -= 1
            self._procs.discard(proc)
        if code == 0:
            self._stats.finished += 1
        elif code == 3:
            self._stats.idle += 1
        else:
            self._stats.failed += 1

    async def _run_framework_worker(self, framework: Framework) -> None:
        """A Job of a framework: its own worker in burst mode, which prints "done <item>"
        per task and exits once the queue is empty."""
        proc = await framework.start_worker()
        self.pending -= 1  # its worker runs: KEDA's pod is running
        self._procs.add(proc)
        done = 0
        try:
            assert proc.stdout is not None
            async for line in proc.stdout:
                if line.startswith(b"done "):
                    done += 1
                    self._stats.finished += 1
            code = await proc.wait()
        finally:
            self._procs.discard(proc)
        if code != 0:
            self._stats.failed += 1
        elif done == 0:
            self._stats.idle += 1

    async def stop(self) -> None:
        """End every Job still running (Ctrl-C)."""
        for proc in list(self._procs):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        for proc in list(self._procs):
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(proc.wait(), 5)

    async def wait(self) -> None:
        await asyncio.gather(*self._running, return_exceptions=True)


class SimulatedJobs:
    """The Jobs of ``--simulate``: each takes one item ``start_delay`` simulated seconds
    after KEDA creates it (its Pod starting) and finishes ``work_seconds`` later; until
    it has taken its item it is pending, as KEDA counts a Pod not yet running."""

    def __init__(self, options: DemoOptions, stats: Stats, memory: MemoryAdapter) -> None:
        self._options = options
        self._stats = stats
        self._memory = memory
        self._starting: list[float] = []  # when each pending Job takes its item
        self._working: list[float] = []  # when each running Job finishes
        self.now = 0.0

    @property
    def running(self) -> int:
        return len(self._starting) + len(self._working)

    @property
    def pending(self) -> int:
        return len(self._starting)

    def start(self, count: int) -> None:
        self._starting += [self.now + self._options.start_delay] * count
        self._stats.created += count
        self._stats.peak_running = max(self._stats.peak_running, self.running)

    def advance(self, now: float) -> None:
        """Move to ``now``: Jobs that finish, then Jobs whose Pods start take items."""
        self.now = now
        done = [t for t in self._working if t <= now]
        self._working = [t for t in self._working if t > now]
        self._stats.finished += len(done)
        for _ in [t for t in self._starting if t <= now]:
            if self._memory.take(QUEUE):
                self._working.append(now + self._options.work_seconds)
            else:
                self._stats.idle += 1
        self._starting = [t for t in self._starting if t > now]

    async def stop(self) -> None:
        self._starting, self._working = [], []


# One row per poll; every row and header line fits 80 columns.
_ROW = "{:>7} {:>6} {:>7} {:>8} {:>8} {:>5} {:>8} {:>5} {:>7}"
COLUMNS = _ROW.format(
    "time", "queue", "active", "running", "pending", "new", "created", "done", "reads"
)


def header(options: DemoOptions, backend: str) -> list[str]:
    """The lines pinned above the rows: where the queue is, the ScaledJob, the columns."""
    arrival = (
        f"{options.items} items at {options.inflow:g}/s"
        if options.inflow > 0
        else f"{options.items} items at once"
    )
    return [
        f"keda-queue-scaler demo · {backend}",
        f"{arrival} · {options.work_seconds:g}s of work each · pollingInterval "
        f"{options.polling_interval:g}s",
        f"maxReplicaCount {options.max_replicas} · scalingStrategy {options.strategy} · "
        "Ctrl-C stops",
        "",
        COLUMNS,
    ]


def _view(out: TextIO, lines: list[str], stats: Stats, row: str, *, tty: bool) -> None:
    stats.history.append(row)
    if not tty:
        print(row, file=out, flush=True)
        return
    out.write("\033[H\033[J")  # home, clear
    out.write("\n".join([*lines, *stats.history[-15:]]) + "\n")
    out.flush()


async def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when drained, 1 on timeout, 128 + the signal's number when
    stopped by SIGINT (Ctrl-C), SIGTERM or SIGHUP (its terminal closed)."""
    if options.strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
    backend = options.backend
    if backend == "auto":
        backend = "redis" if shutil.which("redis-server") else "memory"
    if options.worker == "work" and (options.queue_format != "list" or options.backend == "memory"):
        raise ValueError(
            "--worker work takes items from a Redis list: not with --queue-format "
            "or --backend memory"
        )
    if options.queue_format != "list":
        if backend == "memory":
            raise ValueError("--queue-format needs Redis: it counts a framework's Redis keys")
        backend = "redis"
    if backend == "redis" and not shutil.which("redis-server"):
        raise ValueError(
            f"--{'queue-format' if options.queue_format != 'list' else 'backend redis'} "
            "needs redis-server on the PATH (make brokers)"
        )
    if options.simulate:
        if options.backend == "redis" or options.queue_format != "list" or options.worker != "pop":
            raise ValueError(
                "--simulate runs the in-memory queue and modelled Jobs: not with --backend "
                "redis, --queue-format or --worker work"
            )
        backend = "memory"
    tty = out.isatty() and not options.plain
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(sig: int) -> None:
        received.append(sig)
        stop.set()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with contextlib.AsyncExitStack() as stack:
            redis_address = None
            memory = None
            framework = None
            if backend == "redis":
                redis_address = await stack.enter_async_context(local_redis())
                where = f"redis-server on {redis_address}, list {QUEUE}"
            else:
                where = "in-memory (no redis-server installed)"
                if options.backend == "memory":
                    where = "in-memory (--backend memory)"
                if options.simulate:
                    where = f"simulated clock, Pods start in {options.start_delay:g}s"
            if redis_address is not None and options.queue_format != "list":
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kqs-")))
                framework = await prepare(
                    options.queue_format, redis_address, workdir,
                    python=options.framework_python or sys.executable,
                    node_modules=options.node_modules or os.environ.get("NODE_PATH", ""),
                    work_seconds=options.work_seconds,
                )  # fmt: skip
                where = (
                    f'redis-server on {redis_address}, {framework.name} queue "{framework.queue}"'
                    f", a {framework.name} burst worker per Job"
                )
            lines = header(options, where)
            if not tty:
                print("\n".join(lines), file=out, flush=True)
            settings = Settings(
                host="127.0.0.1", port=0, metrics_port=-1, enable_memory=True, log_level="WARNING",
                # simulated polls come back to back: a TTL on the wall would serve stale counts
                cache_ttl=0.0 if options.simulate else min(1.0, options.polling_interval / 2),
            )  # fmt: skip
            adapters = open_adapters(settings, ClientBudget(settings.max_broker_clients))
            if backend == "memory":
                memory = MemoryAdapter()
                adapters["memory"] = memory
            server = ScalerServer(settings, adapters=adapters)
            await server.start()
            stack.push_async_callback(server.stop, 1.0)
            caller = Caller(timeout=5.0, credentials=None)
            stack.push_async_callback(caller.close)
            outcome = await _loop(
                options, out, stop, tty, lines, server, caller, redis_address, memory, framework
            )
            return 128 + received[0] if outcome == 130 and received else outcome
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


class Inflow:
    """Pushes the demo's items: all at once, or ``inflow`` per second as time passes."""

    def __init__(self, options: DemoOptions, redis_address: str | None,
                 memory: MemoryAdapter | None,
                 framework: Framework | None = None) -> None:  # fmt: skip
        self._options = options
        self._memory = memory
        self._framework = framework
        self._client: Redis | None = None
        if redis_address is not None and framework is None:
            from redis.asyncio import Redis

            host, _, port = redis_address.rpartition(":")
            self._client = Redis(host=host, port=int(port), socket_timeout=5)
        self.pushed = 0

    async def push_due(self, elapsed: float) -> None:
        rate = self._options.inflow
        due = self._options.items if rate <= 0 else min(self._options.items, int(elapsed * rate))
        count = due - self.pushed
        if count <= 0:
            return
        if self._framework is not None:
            await self._framework.enqueue(self.pushed, due)
        elif self._client is not None:
            await self._client.rpush(QUEUE, *range(self.pushed, due))
        else:
            assert self._memory is not None
            self._memory.put(QUEUE, count)
        self.pushed = due

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _loop(options: DemoOptions, out: TextIO, stop: asyncio.Event, tty: bool,
                lines: list[str], server: ScalerServer, caller: Caller,
                redis_address: str | None, memory: MemoryAdapter | None,
                framework: Framework | None = None) -> int:  # fmt: skip
    if redis_address is not None and framework is not None:
        metadata = {"scalerType": "redis", "address": redis_address, **framework.metadata()}
    elif redis_address is not None:
        metadata = {"scalerType": "redis", "address": redis_address, "listName": QUEUE}
        if options.worker == "work":
            metadata["include"] = "ready,expired"  # docs/worker.md: what the scaler counts
    else:
        assert memory is not None
        metadata = {"scalerType": "memory", "queueName": QUEUE}
    metadata["listLength" if redis_address else "queueLength"] = "1"
    address = f"127.0.0.1:{server.port}"
    metadata["scalerAddress"] = address
    job = ScaledJob(
        name="demo-worker", namespace="demo", polling_interval=math.ceil(options.polling_interval),
        spec=ScaledJobSpec(
            max_replica_count=options.max_replicas,
            scaling_strategy=ScalingStrategy(strategy=options.strategy),
        ),
        triggers=(TriggerSpec("external", metadata),),
    )  # fmt: skip
    stats = Stats()
    jobs: Jobs | SimulatedJobs
    if options.simulate:
        assert memory is not None
        jobs = SimulatedJobs(options, stats, memory)
    else:
        jobs = Jobs(options, stats, redis=redis_address, memory=memory, framework=framework)
    inflow = Inflow(options, redis_address, memory, framework)
    started = time.monotonic()
    simulated = [0.0]  # --simulate's clock: one polling interval per poll

    def clock() -> float:
        return simulated[0] if options.simulate else time.monotonic() - started

    outcome = 0
    try:
        while not stop.is_set():
            if isinstance(jobs, SimulatedJobs):
                jobs.advance(clock())
            await inflow.push_due(clock())
            polled = await caller.poll(job, 0, address)
            reading = polled.reading
            decision = decide(job.spec, [reading], running=jobs.running, pending=jobs.pending)
            spec = reading.specs[0] if reading.specs else None
            error = reading.error or (spec.error if spec else "no metric spec")
            queue_length = spec.queue_length if spec else 0.0
            stats.polls += 1
            jobs.start(decision.jobs)
            reads = server.registry.get_sample_value(
                "keda_queue_scaler_broker_reads_total",
                {"scaler_type": metadata["scalerType"], "outcome": "ok"},
            ) or 0  # fmt: skip
            stats.longest_queue = max(stats.longest_queue, queue_length)
            row = _ROW.format(
                f"{clock():.1f}s",
                "error" if error else f"{queue_length:g}",
                "yes" if spec and spec.active else "no",
                jobs.running,
                decision.pending,
                f"+{decision.jobs}",
                stats.created,
                stats.finished,
                f"{reads:g}",
            )
            _view(out, lines, stats, row, tty=tty)
            if error:
                print(f"  scaler error: {error}", file=out, flush=True)
            drained = not error and queue_length == 0 and jobs.running == 0
            if drained and inflow.pushed == options.items and stats.finished >= options.items:
                break
            if clock() > options.timeout:
                print(f"not drained after {options.timeout:g}s", file=out, flush=True)
                outcome = 1
                break
            if options.simulate:
                simulated[0] += options.polling_interval
                await asyncio.sleep(0)  # Ctrl-C still stops it
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(options.polling_interval):
                    await stop.wait()
        if stop.is_set():
            outcome = 130
            print("interrupted: stopping Jobs, the scaler and Redis", file=out, flush=True)
    finally:
        await jobs.stop()
        await inflow.aclose()
    elapsed = clock()
    labels = {"scaler_type": metadata["scalerType"], "outcome": "ok"}
    reads = server.registry.get_sample_value("keda_queue_scaler_broker_reads_total", labels) or 0
    rpcs = sum(
        server.registry.get_sample_value(
            "keda_queue_scaler_rpc_requests_total", {"method": m, "code": "OK"}
        ) or 0
        for m in ("GetMetricSpec", "GetMetrics", "IsActive")
    )  # fmt: skip
    summary = [
        f"{'drained' if outcome == 0 else 'stopped'}: {stats.finished} of {options.items} items "
        f"done by {stats.created} Jobs ({stats.idle} found nothing, {stats.failed} failed)",
        f"  at most {stats.peak_running} Jobs at once, longest queue {stats.longest_queue:g}, "
        f"{elapsed:.1f}s over {stats.polls} polls",
        f"  {rpcs:g} RPCs answered with {reads:g} broker reads; left running: {jobs.running}",
    ]
    print("\n".join(summary), file=out, flush=True)
    return outcome


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    fields = {f.name for f in dataclasses.fields(DemoOptions)}
    return DemoOptions(**{k: v for k, v in vars(args).items() if k in fields})
