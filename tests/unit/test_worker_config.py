"""The worker's inputs: --meta, --meta-file, ...FromEnv from the container, the
enqueue helper's envelope, the list states the scaler counts for it, and the
command line's refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scaler.brokers.redis.client import RedisAdapter
from scaler.brokers.redis.metadata import RedisListQuery, RedisWorkQuery
from scaler.errors import MetadataError
from scaler.registry import Triggers
from scaler.worker import config, envelope
from scaler.worker.redis_list import RedisListSource
from scaler.worker.redis_stream import RedisStreamSource, payload_of

TRIGGERS = Triggers({"redis": RedisAdapter(timeout=1)})
BASE = {"scalerType": "redis", "address": "redis:6379", "listName": "jobs"}


def test_a_from_env_key_is_read_from_the_container_and_an_empty_one_dropped() -> None:
    meta = {"passwordFromEnv": "PW", "usernameFromEnv": "NOPE", "listName": "j"}
    assert config.resolve_env(meta, {"PW": "s3cret", "NOPE": ""}) == {
        "passwordFromEnv": "s3cret", "listName": "j"}  # fmt: skip


def test_meta_pairs_and_a_meta_file(tmp_path: Path) -> None:
    assert config.parse_pairs(["a=1", "b=x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(MetadataError, match="KEY=VALUE"):
        config.parse_pairs(["novalue"])
    whole = tmp_path / "trigger.yaml"
    whole.write_text("type: external\nmetadata:\n  listName: jobs\n  listLength: 1\n")
    assert config.read_meta_file(str(whole)) == {"listName": "jobs", "listLength": "1"}
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(MetadataError, match="map"):
        config.read_meta_file(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"scalerType": "kafka"}, '"scalerType"'),
        ({**BASE, "queueFormat": "rq", "queueName": "q", "listName": ""}, "own worker"),
        ({"scalerType": "redis-streams", "address": "r:1", "stream": "s"}, '"consumerGroup"'),
        ({"scalerType": "redis-cluster", "addresses": "a:1", "listName": "jobs"}, "hash tag"),
        ({"scalerType": "rabbitmq", "host": "http://u:p@r:15672/v", "queueName": "q"}, "AMQP"),
        ({"scalerType": "rabbitmq", "host": "amqp://r", "queueName": "q.*", "useRegex": "true",
          "mode": "QueueLength", "value": "1"}, '"useRegex"'),
        ({"scalerType": "aws-sqs-queue", "queueURL": "q", "awsRegion": "eu-west-1",
          "awsRoleArn": "arn:aws:iam::1:role/r"}, '"awsRoleArn"'),
    ],
)  # fmt: skip
def test_what_work_refuses(meta: dict[str, str], needle: str) -> None:
    with pytest.raises(MetadataError) as caught:
        config.open_source(meta, environ={}, lease=10)
    assert needle in caught.value.message


def test_each_scaler_type_opens_its_broker() -> None:
    assert isinstance(config.open_source(BASE, environ={}, lease=1), RedisListSource)
    tagged = {"scalerType": "redis-cluster", "addresses": "a:1", "listName": "{jobs}"}
    assert isinstance(config.open_source(tagged, environ={}, lease=1), RedisListSource)
    stream = {"scalerType": "redis-streams", "address": "r:1", "stream": "s",
              "consumerGroup": "g"}  # fmt: skip
    assert isinstance(config.open_source(stream, environ={}, lease=1), RedisStreamSource)


@pytest.mark.parametrize(
    "payload", [b"", b"plain", "ünïcode €".encode(), b"\xff\xfe binary \x00", b'{"kqs":1}']
)
def test_the_envelope_gives_back_the_payload_with_its_id_and_time(payload: bytes) -> None:
    item = envelope.unwrap(envelope.wrap(payload, item_id="abc", at_ms=1_700_000_000_123))
    assert (item.item_id, item.payload, item.enqueued_at) == ("abc", payload, 1_700_000_000.123)


@pytest.mark.parametrize("raw", [b"plain", b'{"kqs":1,"id":2}', b'{"kqs":1,"id":"x"', b"\xff"])
def test_a_raw_item_is_passed_as_it_is_with_a_digest_id_and_no_time(raw: bytes) -> None:
    import hashlib

    item = envelope.unwrap(raw)
    assert (item.payload, item.enqueued_at) == (raw, None)
    assert item.item_id == hashlib.sha1(raw).hexdigest()


def test_a_stream_entry_gives_cmd_its_payload_field_or_all_fields() -> None:
    assert payload_of({b"payload": b"x", b"other": b"y"}) == b"x"
    assert payload_of({b"a": b"1", b"b": b"2"}) == b'{"a": "1", "b": "2"}'


def test_list_states_for_workers_and_their_refusals() -> None:
    assert isinstance(TRIGGERS.parse(BASE).query, RedisListQuery)  # KEDA's count
    assert isinstance(TRIGGERS.parse({**BASE, "include": "ready"}).query, RedisListQuery)
    work = TRIGGERS.parse({**BASE, "include": "expired, ready,active"}).query
    assert isinstance(work, RedisWorkQuery)
    assert work.states == ("ready", "active", "expired")
    cluster = {"scalerType": "redis-cluster", "addresses": "a:1", "include": "ready,active"}
    with pytest.raises(MetadataError, match="hash tag"):
        TRIGGERS.parse({**cluster, "listName": "jobs"})
    assert isinstance(TRIGGERS.parse({**cluster, "listName": "{jobs}"}).query, RedisWorkQuery)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "give the command"),
        (["--lease", "0", "--", "true"], "--lease"),
        (["--max-attempts", "0", "--", "true"], "--max-attempts"),
        (["--max-items", "0", "--", "true"], "--max-items"),
    ],
)
def test_work_refuses_bad_flags_in_one_line_with_exit_2(args: list[str], needle: str) -> None:
    done = subprocess.run([sys.executable, "-m", "scaler", "work", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


WORK_EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("work-*-scaledjob.yaml"))


def test_there_is_a_work_example_per_broker() -> None:
    import yaml

    types = {yaml.safe_load(p.read_text())["spec"]["triggers"][0]["metadata"]["scalerType"]
             for p in WORK_EXAMPLES}  # fmt: skip
    assert types == {"redis", "redis-streams", "aws-sqs-queue", "rabbitmq"}


@pytest.mark.parametrize("path", WORK_EXAMPLES, ids=[p.name for p in WORK_EXAMPLES])
def test_a_work_example_shares_its_trigger_with_the_job_and_maps_its_exit_codes(path: Path) -> None:
    """The Job's `work --meta` keys are the trigger's own, value for value, and the
    podFailurePolicy acts on work's "empty" and "dead-lettered" codes."""
    import yaml

    from scaler.cli import build_parser
    from scaler.worker import Exit

    doc = yaml.safe_load(path.read_text())
    job = doc["spec"]["jobTargetRef"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["command"][0] == "keda-queue-scaler"
    args = build_parser().parse_args(container["command"][1:])
    assert args.func.__name__ == "_work"
    meta = config.parse_pairs(args.meta)
    trigger = doc["spec"]["triggers"][0]["metadata"]
    assert {k: trigger[k] for k in meta} == meta
    rules = job["podFailurePolicy"]["rules"]
    fail_codes = {c for r in rules if r["action"] == "FailJob"
                  for c in r["onExitCodes"]["values"]}  # fmt: skip
    assert fail_codes == {Exit.EMPTY, Exit.DEAD_LETTERED}
    assert all(r["onExitCodes"]["containerName"] == container["name"]
               for r in rules if "onExitCodes" in r)  # fmt: skip
