"""The chart and ``serve`` agree on every setting: a value the chart's schema accepts
renders into an environment ``serve`` starts with (and reads back as given), and a
bad value is refused by both, each in one line that names the setting.

Values are generated from values.schema.json itself (:func:`values_from`), so a
schema change that lets through what the scaler refuses fails here, not in a
crash-looping Pod. Found this way: helm renders integers of a million and more as
``1e+06`` (a YAML number is a float64 to helm), which the scaler could not read."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from scaler import settings as settings_mod
from scaler.cli import main
from scaler.guard import BROKER_GRAMMAR, ENDPOINT_GRAMMAR
from tests.chart.conftest import load_tool

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "keda-queue-scaler"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())

# values path -> the Settings field it reaches (the chart's deployment.yaml)
FIELDS = {
    ("service", "grpcPort"): "port", ("service", "metricsPort"): "metrics_port",
    ("config", "cacheTtl"): "cache_ttl", ("config", "readTimeout"): "read_timeout",
    ("config", "streamInterval"): "stream_interval", ("config", "gracePeriod"): "grace_period",
    ("config", "maxMetricSeries"): "max_metric_series", ("config", "maxTriggers"): "max_triggers",
    ("config", "redisMaxConnections"): "redis_max_connections",
    ("config", "maxBrokerClients"): "max_broker_clients", ("config", "logLevel"): "log_level",
    ("config", "logFormat"): "log_format", ("config", "eventLoop"): "event_loop",
    ("config", "allowBrokers"): "allow_brokers",
    ("config", "allowAwsEndpoints"): "allow_aws_endpoints",
    ("config", "allowAwsRoles"): "allow_aws_roles", ("kubernetes", "enabled"): "kubernetes",
    ("kubernetes", "namespaces"): "watch_namespaces",
    ("kubernetes", "kedaNamespace"): "keda_namespace",
}  # fmt: skip


def settings_schema() -> dict[str, Any]:
    """The part of values.schema.json that reaches the scaler's settings, every key given."""
    out: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    for section in sorted({s for s, _ in FIELDS}):
        sub = copy.deepcopy(SCHEMA["properties"][section])
        keys = [k for s, k in FIELDS if s == section]
        sub["properties"] = {k: sub["properties"][k] for k in keys}
        sub["required"] = keys
        out["properties"][section] = sub
    out["required"] = sorted(out["properties"])
    return out


def values_from(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a JSON Schema accepts, for the keywords the chart's settings use (enum,
    boolean, integer and number bounds, string pattern and length, arrays of unique
    items, objects with required keys); any other keyword fails the test, so a schema
    change cannot widen what is accepted unseen."""
    known = {"type", "enum", "minimum", "maximum", "exclusiveMinimum", "pattern", "minLength",
             "maxLength", "items", "uniqueItems", "properties", "required",
             "additionalProperties"}  # fmt: skip
    assert set(schema) <= known, set(schema) - known
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        if kind == "integer":
            low = None if low is None else int(low) + ("exclusiveMinimum" in schema)
            return st.integers(min_value=low, max_value=schema.get("maximum"))
        return st.floats(
            min_value=low, max_value=schema.get("maximum"), allow_nan=False,
            allow_infinity=False, exclude_min="exclusiveMinimum" in schema,
        ) | st.integers(min_value=0 if low is None else int(low) + 1,
                        max_value=int(schema.get("maximum", 10**9)))  # fmt: skip
    if kind == "string":
        text = (
            st.from_regex(schema["pattern"], fullmatch=True) if "pattern" in schema
            else st.text(min_size=schema.get("minLength", 0))
        )  # fmt: skip
        return text.filter(
            lambda t: schema.get("minLength", 0) <= len(t) <= schema.get("maxLength", 10**6)
        )
    if kind == "array":
        return st.lists(values_from(schema["items"]), max_size=4,
                        unique=schema.get("uniqueItems", False))  # fmt: skip
    assert kind == "object", schema
    assert set(schema["required"]) == set(schema["properties"]), schema
    return st.fixed_dictionaries({k: values_from(v) for k, v in schema["properties"].items()})


def render(helm: str, values: dict[str, Any], tmp: Path) -> subprocess.CompletedProcess[str]:
    # JSON (which is YAML): PyYAML leaves "y" bare, and helm's YAML reads that as true
    (tmp / "values.yaml").write_text(json.dumps(values, ensure_ascii=False))
    return subprocess.run(
        [helm, "template", "kqs", str(CHART), "-f", str(tmp / "values.yaml"),
         "--show-only", "templates/deployment.yaml"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def rendered_env(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    (container,) = yaml.safe_load(done.stdout)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_the_schema_holds_the_scalers_own_grammar_levels_and_bounds() -> None:
    """Kept current by ``.venv/bin/python tools/chartschema.py``."""
    updated = load_tool("chartschema").updated
    assert updated(copy.deepcopy(SCHEMA)) == SCHEMA, "run: .venv/bin/python tools/chartschema.py"
    config = SCHEMA["properties"]["config"]["properties"]
    assert config["allowBrokers"]["items"]["pattern"] == f"^(?:{BROKER_GRAMMAR})$"
    assert config["allowAwsEndpoints"]["items"]["pattern"] == f"^(?:{ENDPOINT_GRAMMAR})$"
    assert tuple(config["logLevel"]["enum"]) == settings_mod.LOG_LEVELS


@settings(
    max_examples=int(os.environ.get("KQS_CHART_EXAMPLES", "100")),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example runs helm: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=values_from(settings_schema()))
def test_every_value_the_chart_accepts_starts_serve_as_given(
    helm: str, tmp_path: Path, values: dict[str, Any]
) -> None:
    # the chart's own check: the Pod's grace must outlast the scaler's drain
    values["terminationGracePeriodSeconds"] = int(values["config"]["gracePeriod"]) + 5
    done = render(helm, values, tmp_path)
    assert done.returncode == 0, done.stderr
    env = rendered_env(done)
    got = settings_mod.from_sources(None, env)  # what `serve` does first; raises if refused
    for (section, key), name in FIELDS.items():
        given_value = values[section][key]
        if section == "kubernetes" and key != "enabled" and not values["kubernetes"]["enabled"]:
            continue  # rendered only with kubernetes.enabled
        if isinstance(given_value, list):
            given_value = ",".join(given_value)
        assert getattr(got, name) == given_value, (key, env)


BAD = [
    # (values, serve's flag and value, what both name)
    ({"config": {"allowBrokers": ["10.0.0.0/33"]}}, ["--allow-brokers", "10.0.0.0/33"], "10.0.0.0/33"),
    ({"config": {"allowBrokers": [","]}}, ["--allow-brokers", ","], "allow"),
    ({"config": {"allowBrokers": ["redis:0"]}}, ["--allow-brokers", "redis:0"], "redis:0"),
    ({"config": {"allowBrokers": ["1:2:3:4:5:6:7:8:9"]}}, ["--allow-brokers", "1:2:3:4:5:6:7:8:9"], "8:9"),
    ({"config": {"allowBrokers": ["::ffff:1.2.3.4/129"]}}, ["--allow-brokers", "::ffff:1.2.3.4/129"], "129"),
    ({"config": {"allowAwsEndpoints": ["ftp://sqs"]}}, ["--allow-aws-endpoints", "ftp://sqs"], "ftp://sqs"),
    ({"config": {"allowAwsEndpoints": ["http://["]}}, ["--allow-aws-endpoints", "http://["], "http://["),
    ({"config": {"allowAwsEndpoints": ["http://sqs:99999"]}}, ["--allow-aws-endpoints", "http://sqs:99999"], "99999"),
    ({"config": {"logLevel": "verbose"}}, ["--log-level", "verbose"], "verbose"),
    ({"config": {"logLevel": "Debug"}}, ["--log-level", "Debug"], "Debug"),
    ({"config": {"logFormat": "xml"}}, ["--log-format", "xml"], "xml"),
    ({"config": {"cacheTtl": -1}}, ["--cache-ttl", "-1"], "cache"),
    ({"config": {"readTimeout": 0}}, ["--read-timeout", "0"], "read"),
    ({"config": {"readTimeout": 4000}}, ["--read-timeout", "4000"], "read"),
    ({"config": {"maxTriggers": 0}}, ["--max-triggers", "0"], "max"),
    ({"config": {"maxTriggers": 1.5}}, ["--max-triggers", "1.5"], "max"),
    ({"config": {"maxMetricSeries": 2_000_000}}, ["--max-metric-series", "2000000"], "max"),
    ({"service": {"grpcPort": 70000}}, ["--port", "70000"], "ort"),
    ({"service": {"grpcPort": "abc"}}, ["--port", "abc"], "ort"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "argv", "named"), BAD, ids=[" ".join(b[1]) for b in BAD])
def test_a_bad_value_is_refused_by_both_in_one_line(
    helm: str,
    tmp_path: Path,
    values: dict[str, Any],
    argv: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = render(helm, values, tmp_path)
    assert done.returncode != 0, done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("- at ")]
    section, key = next(iter(values.items()))
    assert len(errors) == 1, done.stderr
    assert f"/{section}/{next(iter(key))}" in errors[0], done.stderr
    for name in list(os.environ):
        if name.startswith(settings_mod.ENV_PREFIX):
            monkeypatch.delenv(name)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("keda-queue-scaler serve: "), err
    assert named in err[0], err
