"""Server settings: one dataclass, read from flags and ``KQS_*`` environment variables.

Precedence: command-line flag, then environment variable, then the default. Each
field's ``help`` (with its unit) is shown by ``keda-queue-scaler serve --help`` and
in docs/configuration.md's settings table, which a test keeps identical to
:func:`markdown_table`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaler.guard import ENDPOINT_GRAMMAR, Pattern

ENV_PREFIX = "KQS_"


# Any, as dataclasses.field's own: the field's annotation gives the type.
def _setting(default: object, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    host: str = _setting("0.0.0.0", "Address the gRPC server listens on.")  # noqa: S104
    port: int = _setting(6000, "gRPC port (0 picks a free port and logs it).")
    metrics_host: str = _setting("0.0.0.0", "Address of the Prometheus /metrics HTTP server.")  # noqa: S104
    metrics_port: int = _setting(9464, "Port of /metrics (0 picks a free port, -1 disables it).")
    tls_cert_file: str = _setting(
        "", "Server certificate (PEM) file; with --tls-key-file turns TLS on."
    )
    tls_key_file: str = _setting("", "Server private key (PEM) file.")
    tls_client_ca_file: str = _setting(
        "", "CA bundle (PEM) for client certificates; when set, clients must present one (mTLS)."
    )
    credentials_dir: str = _setting(
        "",
        "Folder of broker credentials, one subfolder per credentialsRef, one file per "
        "key (a mounted Secret).",
    )
    cache_ttl: float = _setting(
        1.0, "Seconds a broker reading is reused for identical queries (0 disables the cache)."
    )
    read_timeout: float = _setting(
        5.0, "Seconds one broker read may take before the RPC fails with DEADLINE_EXCEEDED."
    )
    stream_interval: float = _setting(
        5.0, "Seconds between re-checks on an open StreamIsActive stream."
    )
    grace_period: float = _setting(
        10.0, "Seconds in-flight RPCs get to finish after SIGTERM/SIGINT."
    )
    max_metric_series: int = _setting(
        500,
        "Most per-ScaledJob series kept, of each kind: values per ScaledJob and metric, "
        "error counts per ScaledJob and code (least recently updated dropped).",
    )
    max_triggers: int = _setting(
        16384,
        "Most parsed triggers kept (one per distinct trigger metadata; least recently used "
        "dropped, then parsed again when asked). Give it at least the ScaledJobs' triggers.",
    )
    redis_max_connections: int = _setting(32, "Connection pool size per Redis server identity.")
    max_broker_clients: int = _setting(
        256,
        "Most broker clients (connections, pools, sessions) open at once across all triggers; "
        "the least recently used idle one is closed to make room.",
    )
    allow_brokers: str = _setting(
        "",
        "Comma-separated host[:port] patterns the scaler may dial: names with * wildcards, IP "
        "addresses or CIDR networks ([IPv6]:port). Unset: any broker. Link-local and cloud "
        "metadata addresses are refused unless a pattern names them explicitly.",
    )
    allow_aws_endpoints: str = _setting(
        "",
        "Comma-separated awsEndpoint URLs a trigger may name (SQS and STS requests are "
        "signed); unset: none, only AWS's own endpoints.",
    )
    allow_aws_roles: str = _setting(
        "",
        "Comma-separated role ARN patterns (* wildcards) the scaler may assume with its own "
        "AWS identity for a trigger's awsRoleArn; unset: none.",
    )
    kubernetes: bool = _setting(
        False,
        "Watch the Kubernetes API (in-cluster service account, or --kubeconfig): resolve "
        "triggers' authenticationRef as KEDA does for its built-in scalers, and export Job "
        "outcomes per ScaledJob. Needs the kubernetes extra and the chart's RBAC.",
    )
    kubeconfig: str = _setting(
        "", "Kubeconfig file for --kubernetes (unset: the in-cluster service account)."
    )
    watch_namespaces: str = _setting(
        "",
        "Comma-separated namespaces --kubernetes watches (a Role in each); unset: all "
        "namespaces (a ClusterRole).",
    )
    keda_namespace: str = _setting(
        "keda",
        "KEDA's cluster-objects namespace (KEDA_CLUSTER_OBJECT_NAMESPACE): where a "
        "ClusterTriggerAuthentication's Secrets and ConfigMaps live.",
    )
    enable_memory: bool = _setting(
        False, 'Serve scalerType "memory" (in-process queues, for tests and demos).'
    )
    log_level: str = _setting(
        "INFO",
        "Log level: DEBUG, INFO, WARNING or ERROR (or lower case). Broker client libraries "
        "(botocore, aiohttp, aiormq) stay at INFO or above: their debug output carries signed "
        "headers and tokens.",
    )
    log_format: str = _setting("text", "Log format: text or json.")
    event_loop: str = _setting(
        "uvloop",
        "Event loop serve runs on: uvloop (libuv; less CPU per call) or asyncio (the "
        "standard library's).",
    )

    def validate(self) -> None:
        """Raise ValueError naming the setting when a value cannot work."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{_flag(f.name)} {value} must be a finite number of seconds")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} must be from 0 to 65535")
        if not -1 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics-port {self.metrics_port} must be from -1 to 65535")
        for name in ("cache_ttl",):
            if getattr(self, name) < 0:
                raise ValueError(f"{_flag(name)} must be 0 or more")
        for name in ("read_timeout", "stream_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{_flag(name)} must be greater than 0")
        if self.grace_period < 0:
            raise ValueError("grace-period must be 0 or more")
        if (
            min(self.max_metric_series, self.max_triggers, self.redis_max_connections,
                self.max_broker_clients) < 1
        ):  # fmt: skip
            raise ValueError(
                "max-metric-series, max-triggers, redis-max-connections and max-broker-clients "
                "must be at least 1"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls-cert-file and tls-key-file must be given together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("tls-client-ca-file (mTLS) needs tls-cert-file and tls-key-file")
        if self.credentials_dir and not Path(self.credentials_dir).is_dir():
            raise ValueError(f"credentials-dir {self.credentials_dir!r} is not a folder")
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"{_flag(name)} {path!r} is not a readable file")
        for name in LIST_SETTINGS:
            text = getattr(self, name)
            if text.strip() and any(not item.strip() for item in text.split(",")):
                raise ValueError(
                    f"{_flag(name)} {text!r} has an empty entry: give comma-separated values, "
                    "or leave it unset"
                )
        for name, top in MAXIMA.items():
            if getattr(self, name) > top:
                raise ValueError(f"{_flag(name)} {getattr(self, name)} must be at most {top}")
        for text in split_list(self.allow_brokers):
            try:
                Pattern.parse(text)
            except ValueError as exc:
                raise ValueError(f"allow-brokers: {exc}") from None
        for url in split_list(self.allow_aws_endpoints):
            if not re.fullmatch(ENDPOINT_GRAMMAR, url):
                raise ValueError(
                    f"allow-aws-endpoints: {url!r} must be an http(s) URL: a host name, IPv4 "
                    "address or [IPv6] address, an optional :port (1-65535) and path"
                )
        if (self.kubeconfig or self.watch_namespaces) and not self.kubernetes:
            raise ValueError("kubeconfig and watch-namespaces need --kubernetes")
        if self.kubeconfig and not Path(self.kubeconfig).is_file():
            raise ValueError(f"kubeconfig {self.kubeconfig!r} is not a readable file")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log-level {self.log_level!r} must be DEBUG, INFO, WARNING or ERROR (or in "
                "lower case)"
            )
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log-format {self.log_format!r} must be text or json")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"event-loop {self.event_loop!r} must be uvloop or asyncio")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file)


#: The values --log-level takes: each level in upper or lower case (the chart's
#: schema lists the same).
LOG_LEVELS = (*(levels := ("DEBUG", "INFO", "WARNING", "ERROR")), *(v.lower() for v in levels))
LOG_FORMATS = ("text", "json")
EVENT_LOOPS = ("uvloop", "asyncio")
#: Comma-separated settings: an empty entry is refused (``","`` is not "any broker").
LIST_SETTINGS = ("allow_brokers", "allow_aws_endpoints", "allow_aws_roles", "watch_namespaces")
#: The largest value each bounded setting takes (the chart's schema has the same
#: maxima): seconds past an hour, or counts past these, are typing mistakes.
MAXIMA: dict[str, float] = {
    "cache_ttl": 3600, "read_timeout": 3600, "stream_interval": 3600, "grace_period": 3600,
    "max_metric_series": 1_000_000, "max_triggers": 10_000_000,
    "redis_max_connections": 10_000, "max_broker_clients": 1_000_000,
}  # fmt: skip


def split_list(text: str) -> tuple[str, ...]:
    """A comma-separated setting as its items."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _flag(name: str) -> str:
    return name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _convert(kind: type, text: str, source: str) -> object:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{source}={text!r} must be true or false")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(
            f"{source}={text!r} must be a{'n integer' if kind is int else ' number'}"
        ) from None


_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; help shows the env var and the default."""
    for f in dataclasses.fields(Settings):
        kind = _TYPES[str(f.type)]
        shown = f.default if f.default != "" else "unset"
        text = f"{f.metadata['help']} [env {env_name(f.name)}; default {shown}]"
        if kind is bool:
            parser.add_argument(
                f"--{_flag(f.name)}",
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        else:
            parser.add_argument(
                f"--{_flag(f.name)}",
                dest=f.name,
                type=str,  # converted by from_sources: a bad value is one line, no usage
                default=None,
                help=text,
                metavar=f.name.upper().split("_")[-1] if kind is str else kind.__name__.upper(),
            )


def from_sources(
    args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings: flags over ``KQS_*`` env vars over defaults; then validate."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}  # Any: each value is checked by _convert against its field
    for f in dataclasses.fields(Settings):
        given = getattr(args, f.name, None) if args is not None else None
        if isinstance(given, str):
            values[f.name] = _convert(_TYPES[str(f.type)], given, f"--{_flag(f.name)}")
        elif given is not None:
            values[f.name] = given
        elif (text := env.get(env_name(f.name))) is not None:
            values[f.name] = _convert(_TYPES[str(f.type)], text, env_name(f.name))
    settings = Settings(**values)
    settings.validate()
    return settings


def markdown_table() -> str:
    """The settings table of docs/configuration.md."""
    rows = ["| Flag | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = (
            "unset"
            if f.default == ""
            else str(f.default).lower()
            if isinstance(f.default, bool)
            else f.default
        )
        rows.append(
            f"| `--{_flag(f.name)}` | `{env_name(f.name)}` | `{default}` | {f.metadata['help']} |"
        )
    return "\n".join(rows)


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_sources(parser.parse_args(argv), env={})
