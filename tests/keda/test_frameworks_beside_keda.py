"""KEDA's built-in ``redis`` trigger beside ``queueFormat`` on the same data.

For each framework, the framework's own library builds one queue state and counts its
ready work with its own count API; then ``livediff`` (KEDA v2.21.0's built-in trigger
and KEDA's external scaler aimed at us, as the operator builds them) reads it: the
built-in trigger with the ``listName`` a user would give it, the external one with
``queueFormat``. Ours must equal the framework's count; KEDA's is what it is, and
docs/frameworks.md's table "Beside KEDA" must show exactly these numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.brokers import RedisProcess
from tests.conftest import ServerFactory
from tests.frameworks.peers import Peer
from tests.keda.test_live_parity import case, livediff

pytestmark = [pytest.mark.keda, pytest.mark.usefixtures("keda_tools")]

DOCS = Path(__file__).parents[2] / "docs" / "frameworks.md"

# framework -> (peer, settings, state, what the state is in words, KEDA's listName(s))
SCENES: dict[str, tuple[str, dict[str, Any], dict[str, Any], str, tuple[str, ...]]] = {
    "celery": ("python", {"queue": "celery"}, {"priorities": [0, 0, 3, 6, 9, 9], "other": 0},
               "6 tasks at priorities 0, 0, 3, 6, 9, 9", ("celery",)),
    "rq": ("python", {"queue": "default"},
           {"ready": 3, "due": 3, "future": 1, "active": 1, "other": 0},
           "2 queued, 3 scheduled and due, 1 scheduled later, 1 started", ("rq:queue:default",)),
    "arq": ("arq", {"queue": "arq:queue"},
            {"ready": 2, "due": 3, "future": 4, "active": 1, "other": 0},
            "2 queued, 3 deferred and due, 4 deferred later, 1 running", ("arq:queue",)),
    "dramatiq": ("python", {"queue": "default"},
                 {"ready": 2, "due": 3, "future": 1, "active": 1, "other": 0},
                 "2 queued, 3 delayed and due, 1 delayed later, 1 fetched",
                 ("dramatiq:default",)),
    "huey": ("python", {"queue": "huey"}, {"ready": 2, "due": 3, "future": 1, "other": 0},
             "2 queued, 3 scheduled and due, 1 scheduled later", ("huey.redis.huey",)),
    "bullmq": ("bullmq", {"queue": "emails"},
               {"ready": 2, "prioritized": 3, "due": 2, "future": 1, "active": 1,
                "paused": False, "other": 0},
               "2 waiting, 3 prioritized, 2 delayed and due, 1 delayed later, 1 active",
               ("bull:emails:wait", "emails")),
    "sidekiq": ("sidekiq", {"queue": "default"},
                {"ready": 2, "due": 3, "future": 1, "retry_due": 2, "retry_future": 1,
                 "active": 0, "other": 1},
                "2 enqueued, 3 scheduled and due, 1 scheduled later, 2 retries due, 1 retry "
                "later (and another queue's jobs)", ("queue:default",)),
}  # fmt: skip


def row(framework: str, state: str, truth: int, keda: list[tuple[str, str]], ours: str) -> str:
    seen = "; ".join(f"`{name}`: {value}" for name, value in keda)
    return f"| {framework} | {state} | {truth} | {seen} | {ours} |"


def shown(result: dict[str, Any]) -> str:
    if result.get("error"):
        return "error"
    return str(int(result["value"]))


@pytest.mark.timeout(600)
async def test_keda_beside_us_on_each_frameworks_data(
    start_server: ServerFactory, redis_db: RedisProcess, peers: dict[str, Peer]
) -> None:
    url = f"redis://{redis_db.address}/0"
    rows = []
    mismatches = []
    async with start_server() as s:
        for framework, (peer, settings, state, words, list_names) in SCENES.items():
            truth = peers[peer].build(
                {"framework": framework, "url": url, "settings": settings, "state": state}
            )
            base = {"address": redis_db.address}
            cases = [case(f"{framework}-keda-{i}", "redis", {**base, "listName": name})
                     for i, name in enumerate(list_names)]  # fmt: skip
            ours = {**base, "queueFormat": framework, "queueName": settings["queue"]}
            cases.append(case(f"{framework}-ours", "redis", ours))
            answers = await livediff(cases, s.address)
            keda = [(name, shown(answers[f"{framework}-keda-{i}"]["builtin"]))
                    for i, name in enumerate(list_names)]  # fmt: skip
            external = answers[f"{framework}-ours"]["external"]
            if shown(external) != str(truth["ready"]):
                mismatches.append(f"{framework}: ours {external}, the framework's {truth}")
            rows.append(row(framework, words, truth["ready"], keda, shown(external)))
    print("\n" + "\n".join(rows))
    assert not mismatches, mismatches
    text = DOCS.read_text()
    missing = [r for r in rows if r not in text]
    assert not missing, "docs/frameworks.md must show these rows:\n" + "\n".join(missing)
