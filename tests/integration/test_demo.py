"""`keda-queue-scaler demo` in its short non-interactive mode, and Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DEMO = [sys.executable, "-m", "scaler", "demo", "--plain"]


def test_demo_drains_a_burst_with_redis_and_worker_processes() -> None:
    done = subprocess.run(
        [*DEMO, "--items", "6", "--polling-interval", "0.2", "--work-seconds", "0.3",
         "--max-replicas", "3", "--backend", "redis"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "redis-server on 127.0.0.1:" in done.stdout
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("drained: 6 of 6 items done by")
    assert "at most 3 at once" in summary  # maxReplicaCount respected
    assert summary.endswith("left running: 0")
    polls = [line for line in done.stdout.splitlines() if line.startswith("t=")]
    assert len(polls) >= 2
    assert "active yes" in polls[0]
    assert "queue    0" in polls[-1]


def test_demo_with_the_in_memory_queue() -> None:
    done = subprocess.run(
        [*DEMO, "--items", "4", "--polling-interval", "0.1", "--work-seconds", "0.1", "--backend", "memory"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("drained: 4 of 4 items")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "terminal-closed"])
def test_a_signal_stops_everything_it_started(sig: int) -> None:
    proc = subprocess.Popen(
        [*DEMO, "--items", "40", "--polling-interval", "0.2", "--work-seconds", "30",
         "--max-replicas", "4", "--backend", "redis"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    port = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if m := re.search(r"redis-server on (127\.0\.0\.1:\d+)", line):
            port = m[1]
        if "running   4" in line:  # Jobs are working
            break
    assert port is not None, lines
    assert _processes_mentioning(port), "the Jobs should be running now"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out + err
    assert "interrupted" in out
    assert out.strip().splitlines()[-1].endswith("left running: 0")
    time.sleep(0.2)
    assert _processes_mentioning(port) == []  # no Job and no redis-server left
