"""One worker's life: claim an item, run CMD on it, settle it; then the next, or exit.

    claim ──> CMD running (lease renewed every lease/3) ──> exit 0 ──> ack
                 │                                     └──> exit ≠ 0 ──> retry, or dead-letter
                 │                                                        at --max-attempts
                 └── SIGTERM ──> forwarded to CMD ──> CMD ends within --grace: its outcome
                                                 └──> after --grace: CMD killed, item released

An item claimed more than ``--max-attempts`` times (its workers kept dying) is
dead-lettered without running CMD. The exit code says what happened (:class:`Exit`),
for the Job's ``podFailurePolicy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scaler.errors import ScalerError
from scaler.worker.source import Claim, Source

log = logging.getLogger("scaler.worker")


class Exit(enum.IntEnum):
    """``work``'s exit codes (docs/worker.md; the example's podFailurePolicy uses them)."""

    DONE = 0  #: every item claimed was acknowledged
    USAGE = 2  #: bad flags or metadata; nothing was claimed
    EMPTY = 3  #: no item came within --wait; nothing was claimed
    DEAD_LETTERED = 4  #: an item failed --max-attempts times and was dead-lettered
    RETRY = 5  #: CMD failed; the item is back on the queue for another attempt
    BROKER = 69  #: the broker failed (EX_UNAVAILABLE); a held item returns when its lease ends
    TERMINATED = 143  #: SIGTERM (128 + 15); the item was released, or finished within --grace


@dataclass(frozen=True)
class Options:
    cmd: Sequence[str]
    #: Seconds a claim lasts without a heartbeat; renewed every third of it.
    lease: float = 300.0
    #: Claims of one item, the last included, before it is dead-lettered.
    max_attempts: int = 3
    #: Seconds CMD has after SIGTERM before it is killed and its item released.
    grace: float = 25.0
    #: Items to work before exiting (the first claim waits --wait, the later ones none).
    max_items: int = 1
    #: Work until a claim finds the queue empty.
    until_empty: bool = False
    #: Seconds the first claim waits for an item.
    wait: float = 10.0
    #: Extra environment for CMD (tests); the worker's own is always passed on.
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    done: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0
    lost: int = 0

    @property
    def claimed(self) -> int:
        return self.done + self.retried + self.dead + self.released

    def exit_code(self) -> Exit:
        if self.released:
            return Exit.TERMINATED
        if self.dead:
            return Exit.DEAD_LETTERED
        if self.retried:
            return Exit.RETRY
        return Exit.DONE if self.claimed else Exit.EMPTY


def _die_with(parent: int) -> Callable[[], None]:
    """CMD's set-up between fork and exec: its own process group (so a signal reaches
    all of it), and SIGKILL when the worker dies (Linux), as it would with the
    container. A worker killed before the set-up ends makes CMD exit at once rather
    than run without its item."""

    prctl = _prctl()

    def setup() -> None:  # pragma: no cover - runs in the child
        os.setsid()
        if prctl is not None:
            prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(128 + signal.SIGKILL)

    return setup


@functools.cache
def _prctl() -> Callable[[int, int], int] | None:
    """libc's prctl, found once in the worker (not in each CMD's child: a dlopen there
    cost 8 ms per item), or None where there is none."""
    try:
        import ctypes

        found: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return found


class Worker:
    def __init__(self, source: Source, options: Options, *,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.source = source
        self.options = options
        self.tally = Tally()
        self._clock = clock
        self._stop = asyncio.Event()
        self._signal = 0

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """What SIGTERM does: stop claiming; a running CMD gets the signal and --grace."""
        self._signal = signum
        self._stop.set()

    async def run(self) -> Exit:
        opts = self.options
        await self.source.check()
        returned = await self._settle_call("returning expired claims", self.source.sweep)
        if returned:
            log.info("returned %d expired claim(s) to %s", returned, self.source.where)
        wait = opts.wait
        while not self._stop.is_set():
            if not opts.until_empty and self.tally.claimed >= opts.max_items:
                break
            claim = await self._claim(wait)
            wait = 0.0
            if claim is None:
                break
            await self._work(claim)
        code = self.tally.exit_code()
        if self._stop.is_set() and code in (Exit.DONE, Exit.EMPTY):
            code = Exit.TERMINATED
        t = self.tally
        log.info("%d claim(s) from %s: %d done, %d retried, %d dead-lettered, %d released, "
                 "%d lost; exit %d", t.claimed, self.source.where, t.done, t.retried, t.dead,
                 t.released, t.lost, int(code))  # fmt: skip
        return code

    async def _claim(self, wait: float) -> Claim | None:
        claiming = asyncio.ensure_future(self.source.claim(wait))
        stopping = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({claiming, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not claiming.done():
            # A claim cut off here may have moved an item: its lease ends and it returns.
            claiming.cancel()
            with contextlib.suppress(asyncio.CancelledError, ScalerError):
                await claiming
            return None
        return claiming.result()

    async def _settle_call(self, what: str, call: Callable[[], object]) -> int:
        """A broker call that must happen: three tries, a second apart."""
        for attempt in (1, 2, 3):
            try:
                result = await call()  # type: ignore[misc]
                return int(result) if isinstance(result, int | bool) else 0
            except ScalerError as exc:
                if attempt == 3:
                    raise
                log.warning("%s failed (try %d of 3): %s", what, attempt, exc.message)
                await asyncio.sleep(1.0)
        return 0

    async def _work(self, claim: Claim) -> None:
        opts = self.options
        label = f"item {claim.item_id} (attempt {claim.attempt} of {opts.max_attempts})"
        if claim.attempt > opts.max_attempts:
            log.warning("%s: claimed %d times, more than --max-attempts; dead-lettering it "
                        "without running CMD", label, claim.attempt)  # fmt: skip
            await self._settle_call("dead-lettering", lambda: self.source.dead_letter(claim))
            self.tally.dead += 1
            return
        log.info("claimed %s from %s", label, self.source.where)
        started = self._clock()
        heartbeat = asyncio.ensure_future(self._heartbeat(claim))
        try:
            status, stopped = await self._run_cmd(claim)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        took = self._clock() - started
        if status == 0:
            await self._settle_call("acknowledging", lambda: self.source.ack(claim))
            self.tally.done += 1
            log.info("%s done in %.1f s: acknowledged", label, took)
        elif stopped:
            await self._settle_call("releasing", lambda: self.source.release(claim))
            self.tally.released += 1
            log.info("%s released after SIGTERM (CMD status %s)", label, status)
        elif claim.attempt >= opts.max_attempts:
            await self._settle_call("dead-lettering", lambda: self.source.dead_letter(claim))
            self.tally.dead += 1
            log.warning("%s failed (CMD status %s): dead-lettered", label, status)
        else:
            await self._settle_call("returning the item", lambda: self.source.retry(claim))
            self.tally.retried += 1
            log.warning("%s failed (CMD status %s): back on the queue", label, status)

    async def _heartbeat(self, claim: Claim) -> None:
        period = max(0.05, self.options.lease / 3)
        last_sweep = self._clock()
        while True:
            await asyncio.sleep(period)
            try:
                if not await self.source.renew(claim):
                    self.tally.lost += 1
                    log.warning("item %s: the lease was lost (it had ended, and the item went "
                                "back): another worker may run it too", claim.item_id)  # fmt: skip
                    return
                if self._clock() - last_sweep >= self.options.lease / 2:
                    last_sweep = self._clock()
                    await self.source.sweep()
            except ScalerError as exc:
                log.warning("item %s: renewing the lease failed: %s", claim.item_id, exc.message)

    async def _run_cmd(self, claim: Claim) -> tuple[int, bool]:
        """CMD's exit status (negative: the signal that ended it), and whether it ran
        into a SIGTERM of ours."""
        opts = self.options
        with tempfile.TemporaryDirectory(prefix="kqs-item-") as tmp:
            item_file = Path(tmp) / "item"
            item_file.write_bytes(claim.payload)
            item_file.chmod(0o600)
            env = {**os.environ, **opts.env, "KQS_ITEM_FILE": str(item_file),
                   "KQS_ITEM_ID": claim.item_id, "KQS_ATTEMPT": str(claim.attempt),
                   "KQS_MAX_ATTEMPTS": str(opts.max_attempts)}  # fmt: skip
            if claim.enqueued_at is not None:
                env["KQS_ENQUEUED_AT"] = f"{claim.enqueued_at:.3f}"
            # stdin is the item's file, not a pipe: CMD reads the whole item even if
            # the worker dies as CMD starts (a pipe would give it an empty item).
            try:
                with item_file.open("rb") as stdin:
                    proc = await asyncio.create_subprocess_exec(
                        *opts.cmd, stdin=stdin, env=env,
                        preexec_fn=_die_with(os.getpid()),
                    )  # fmt: skip
            except OSError as exc:
                log.error("cannot start CMD %s: %s", opts.cmd[0], exc.strerror or exc)
                return 127, False
            ending = asyncio.ensure_future(proc.wait())
            stopping = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({ending, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopped = False
            if not ending.done():
                stopped = True
                self._signal_cmd(proc, self._signal or signal.SIGTERM)
                try:
                    async with asyncio.timeout(opts.grace):
                        await asyncio.shield(ending)
                except TimeoutError:
                    log.warning("CMD did not end within --grace %.0f s: killing it", opts.grace)
                    self._signal_cmd(proc, signal.SIGKILL)
                    await ending
            stopping.cancel()
            status = ending.result()
            return status, stopped

    @staticmethod
    def _signal_cmd(proc: asyncio.subprocess.Process, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)  # CMD leads its own process group


async def work(source: Source, options: Options) -> Exit:
    """Run ``options.cmd`` on items of ``source`` until done; SIGTERM and SIGINT stop it
    gracefully. Closes ``source``."""
    worker = Worker(source, options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, worker.stop, signum)
    try:
        return await worker.run()
    except ScalerError as exc:
        log.error("%s", exc.message)
        return Exit.USAGE if exc.code == "INVALID_ARGUMENT" else Exit.BROKER
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        await source.aclose()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("keda-queue-scaler work: %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
