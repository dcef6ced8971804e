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


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the demo in its plain mode; it must drain and exit 0."""
    done = subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_demo_drains_a_burst_with_redis_and_worker_processes() -> None:
    done = demo("--items", "6", "--polling-interval", "0.2", "--work-seconds", "0.3",
                "--max-replicas", "3", "--backend", "redis")  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith("keda-queue-scaler demo · redis-server on 127.0.0.1:")
    assert "6 items at once" in lines[1]
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    summary = lines[lines.index(next(x for x in lines if x.startswith("drained:"))) :]
    assert summary[0].startswith("drained: 6 of 6 items done by")
    assert "at most 3 Jobs at once" in summary[1]  # maxReplicaCount respected
    assert summary[-1].endswith("left running: 0")
    polls = rows(done.stdout)
    assert len(polls) >= 2
    assert polls[0]["active"] == "yes"
    assert polls[-1]["queue"] == "0"


def test_demo_with_keda_queue_scaler_work_as_each_jobs_command() -> None:
    done = demo("--items", "6", "--polling-interval", "0.2", "--work-seconds", "0.3",
                "--max-replicas", "3", "--backend", "redis", "--worker", "work")  # fmt: skip
    lines = done.stdout.splitlines()
    summary = next(x for x in lines if x.startswith("drained:"))
    # every Job's `work` claimed an item, ran the command and acknowledged it (exit 0)
    # or found the queue empty (exit 3); none failed
    assert summary.startswith("drained: 6 of 6 items done by")
    assert summary.endswith(" 0 failed)")
    assert lines[-1].endswith("left running: 0")


def test_demo_refuses_work_without_a_redis_list() -> None:
    done = subprocess.run([*DEMO, "--worker", "work", "--backend", "memory"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--worker work" in done.stderr


def rows(out: str) -> list[dict[str, str]]:
    """The per-poll table, by its column names."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["time", "queue"])
    names = lines[start].split()
    table = []
    for line in lines[start + 1 :]:
        cells = line.split()
        if len(cells) != len(names) or not cells[0].endswith("s"):
            break
        table.append(dict(zip(names, cells, strict=True)))
    return table


def test_demo_with_steady_inflow_pushes_every_item_over_time() -> None:
    done = demo("--items", "6", "--inflow", "20", "--polling-interval", "0.1",
                "--work-seconds", "0.1", "--backend", "memory")  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0] == "keda-queue-scaler demo · in-memory (--backend memory)"
    assert "6 items at 20/s" in lines[1]
    assert any(x.startswith("drained: 6 of 6 items") for x in lines)
    created = [int(r["created"]) for r in rows(done.stdout)]
    assert created == sorted(created)
    assert created[-1] >= 6


def test_demo_with_the_in_memory_queue() -> None:
    done = demo("--items", "4", "--polling-interval", "0.1", "--work-seconds", "0.1",
                "--backend", "memory")  # fmt: skip
    assert any(x.startswith("drained: 4 of 4 items") for x in done.stdout.splitlines())


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
        cells = line.split()
        if len(cells) == 9 and cells[0].endswith("s") and cells[3] == "4":  # 4 Jobs running
            break
    assert port is not None, lines
    assert _processes_mentioning(port), "the Jobs should be running now"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out + err
    assert "interrupted" in out
    assert out.strip().splitlines()[-1].endswith("left running: 0")
    # The demo has waited for its children; the kernel may take a moment to reap them.
    deadline = time.monotonic() + 10
    while _processes_mentioning(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(port) == []  # no Job and no redis-server left


PEERS = Path(__file__).resolve().parents[2] / ".venv-peers"
BULLMQ = Path(__file__).resolve().parents[2] / "tests" / "frameworks" / "bullmq" / "node_modules"


@pytest.mark.parametrize("framework", ["rq", "arq", "bullmq"])
def test_demo_with_a_frameworks_own_queue_and_burst_workers(framework: str) -> None:
    """The framework enqueues, queueFormat counts, each Job runs its own burst worker."""
    python = PEERS / ("arq" if framework == "arq" else "main") / "bin" / "python"
    done = demo("--queue-format", framework, "--framework-python", str(python),
                "--node-modules", str(BULLMQ), "--items", "5", "--polling-interval", "0.3",
                "--work-seconds", "0.2", "--max-replicas", "2")  # fmt: skip
    lines = done.stdout.splitlines()
    assert f"{framework} queue" in lines[0]
    assert f"a {framework} burst worker per Job" in lines[0]
    assert any(line.startswith("drained: 5 of 5 items done by") for line in lines), done.stdout
    polls = rows(done.stdout)
    assert polls[0]["active"] == "yes"
    assert polls[-1]["queue"] == "0"


@pytest.mark.parametrize("framework", ["celery", "dramatiq", "huey", "sidekiq"])
def test_demo_says_why_a_framework_without_burst_mode_cannot_run(framework: str) -> None:
    done = subprocess.run([*DEMO, "--queue-format", framework], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "no such mode" in done.stderr
    assert framework in done.stderr


def test_the_readmes_strategy_comparison_is_what_the_simulated_demo_prints() -> None:
    """The README's two commands, run as written: their longest queues are the numbers
    the README gives, and a second run prints the very same rows (a simulated clock)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    commands = re.findall(r'make demo ARGS="(--simulate [^"]*--strategy (\w+))"', readme)
    assert [strategy for _, strategy in commands] == ["default", "accurate"]
    claim = re.search(r"the queue peaks at (\d+) items, against (\d+)\s+with `accurate`", readme)
    assert claim is not None
    longest = {}
    for args, strategy in commands:
        first = demo(*args.split()).stdout
        assert demo(*args.split()).stdout == first
        found = re.search(r"longest queue (\d+)", first)
        assert found is not None, first
        longest[strategy] = int(found[1])
    assert (longest["default"], longest["accurate"]) == (int(claim[1]), int(claim[2]))
    assert longest["default"] > longest["accurate"]


def test_simulate_refuses_real_workers() -> None:
    done = subprocess.run([*DEMO, "--simulate", "--backend", "redis"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--simulate runs the in-memory queue" in done.stderr
