"""The framework peers as the test process drives them: one process per peer (Python
venvs in .venv-peers, Node for BullMQ, Ruby for Sidekiq), a JSON request per line and
an answer per line (see peer.py)."""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "tests" / "frameworks"


@dataclass
class Peer:
    """One framework peer process: a request per line, an answer per line."""

    proc: subprocess.Popen[str]

    def build(self, request: dict[str, Any]) -> dict[str, int]:
        """Empty the database, build the state, answer the framework's counts."""
        return self.build_aged(request)[0]

    def build_aged(self, request: dict[str, Any]) -> tuple[dict[str, int], float | None]:
        """As :meth:`build`, with when the oldest ready item became ready (Unix
        seconds, from the framework's own job records; None when nothing is ready)."""
        answer = self._ask(request)
        counts = dict(answer["counts"])
        oldest = counts.pop("oldest", None)
        return {k: int(v) for k, v in counts.items()}, oldest

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        assert ready, f"the {request['framework']} peer did not answer in 120 s: {request}"
        line = self.proc.stdout.readline()
        assert line, f"the {request['framework']} peer exited (exit {self.proc.poll()})"
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return dict(answer)

    def enqueue(self, framework: str, url: str, queue: str, items: list[str]) -> int:
        """Enqueue the examples' task for each item with the framework's own library;
        the framework's count of the queue's unfinished work (no items: the count)."""
        answer = self._ask({"op": "enqueue", "framework": framework, "url": url,
                            "settings": {"queue": queue}, "items": items})  # fmt: skip
        return int(answer["unfinished"])

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def start(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = PEERS) -> Peer:
    missing = Path(argv[0])
    if missing.is_absolute() and not missing.exists():
        pytest.fail(f"{argv[0]} is missing: run `make peers` (make test does)")
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "TZ": "UTC", **(env or {})},
    )  # fmt: skip
    return Peer(proc)


def python_peer(venv: str, **env: str) -> Peer:
    python = ROOT / ".venv-peers" / venv / "bin" / "python"
    return start([str(python), str(PEERS / "peer.py")], env=env)


def started() -> Iterator[dict[str, Peer]]:
    """Every peer, started; closed when the generator is closed (tests/conftest.py's
    ``peers`` fixture)."""
    made = {
        "python": python_peer("main"),
        "arq": python_peer("arq"),
        "rq-prefixed": python_peer("main", RQ_KEY_PREFIX="team-a"),
        "bullmq": start(["node", str(PEERS / "bullmq" / "peer.mjs")], cwd=PEERS / "bullmq"),
        "sidekiq": start(["ruby", str(PEERS / "sidekiq" / "peer.rb")], cwd=PEERS / "sidekiq"),
    }
    yield made
    for peer in made.values():
        peer.close()
