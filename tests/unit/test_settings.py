"""Server settings: flags over KQS_* variables over defaults; README kept in step."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scaler import settings as s


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    s.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    got = s.from_sources(_args(), env={})
    assert got == s.Settings()
    assert (got.port, got.metrics_port, got.cache_ttl, got.read_timeout) == (6000, 9464, 1.0, 5.0)


def test_env_then_flags_win() -> None:
    env = {"KQS_PORT": "7000", "KQS_CACHE_TTL": "2.5", "KQS_ENABLE_MEMORY": "true"}
    from_env = s.from_sources(_args(), env=env)
    assert (from_env.port, from_env.cache_ttl, from_env.enable_memory) == (7000, 2.5, True)
    flagged = s.from_sources(_args("--port", "7100", "--no-enable-memory"), env=env)
    assert (flagged.port, flagged.cache_ttl, flagged.enable_memory) == (7100, 2.5, False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KQS_PORT": "x"}, "KQS_PORT='x' must be an integer"),
        ({"KQS_CACHE_TTL": "soon"}, "KQS_CACHE_TTL='soon' must be a number"),
        ({"KQS_ENABLE_MEMORY": "perhaps"}, "must be true or false"),
        ({"KQS_PORT": "70000"}, "port 70000 must be from 0 to 65535"),
        ({"KQS_CACHE_TTL": "-1"}, "cache-ttl must be 0 or more"),
        ({"KQS_STREAM_INTERVAL": "0"}, "stream-interval must be greater than 0"),
        ({"KQS_LOG_LEVEL": "chatty"}, "log-level 'chatty'"),
        ({"KQS_LOG_FORMAT": "xml"}, "log-format 'xml'"),
        ({"KQS_EVENT_LOOP": "trio"}, "event-loop 'trio' must be uvloop or asyncio"),
        ({"KQS_READ_TIMEOUT": "nan"}, "read-timeout nan must be a finite number"),
        ({"KQS_READ_TIMEOUT": "inf"}, "read-timeout inf must be a finite number"),
        ({"KQS_CACHE_TTL": "NaN"}, "cache-ttl nan must be a finite number"),
        ({"KQS_GRACE_PERIOD": "-inf"}, "grace-period -inf must be a finite number"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        s.from_sources(_args(), env=env)


def test_docs_settings_table_is_current() -> None:
    page = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    assert s.markdown_table() in page, (
        "docs/configuration.md's settings table is out of date; paste the output of "
        "`python -c 'from scaler.settings import markdown_table; print(markdown_table())'`"
    )
