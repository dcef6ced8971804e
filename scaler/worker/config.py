"""From a trigger's metadata to the queue it names: ``--meta``, ``--meta-file`` and the
container's environment, read as KEDA reads the same trigger.

The keys are the ScaledJob trigger's own (``scalerType``, ``address``, ``listName``,
``queueURL``, ``host``, ...), parsed by the same metadata classes the scaler uses,
so a Job template and its ScaledJob can share one source. A ``<key>FromEnv`` value
names a variable of this container's environment, which is read here, as KEDA
reads it from the Job template's container for the trigger. Credentials belong in
``...FromEnv`` keys (from a Secret), never in ``--meta`` (visible in ``ps``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from scaler.errors import MetadataError
from scaler.worker.source import Source

#: scalerType -> the broker it names, for the worker.
SCALER_TYPES: dict[str, str] = {
    "redis": "redis-list", "redis-sentinel": "redis-list", "redis-cluster": "redis-list",
    "redis-streams": "redis-stream", "redis-sentinel-streams": "redis-stream",
    "redis-cluster-streams": "redis-stream",
    "aws-sqs-queue": "sqs",
    "rabbitmq": "rabbitmq",
}  # fmt: skip


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--meta``) as a map; a later key wins."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MetadataError(f'--meta "{pair[:80]}" must be KEY=VALUE')
        out[key.strip()] = value
    return out


def read_meta_file(path: str) -> dict[str, str]:
    """A YAML map of metadata keys (a trigger's ``metadata:`` block)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
    except OSError as exc:
        raise MetadataError(f"--meta-file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError:
        raise MetadataError(f"--meta-file {path}: not YAML") from None
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        doc = doc["metadata"]  # a whole trigger pasted in
    if not isinstance(doc, dict):
        raise MetadataError(f"--meta-file {path}: must be a map of metadata keys")
    return {str(k): "" if v is None else str(v) for k, v in doc.items()}


def resolve_env(meta: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Each ``<key>FromEnv`` value read from ``environ``, as KEDA resolves it for the
    trigger (an unset or empty variable drops the key, as KEDA does)."""
    out: dict[str, str] = {}
    for key, value in meta.items():
        if key.endswith("FromEnv"):
            resolved = environ.get(value.strip(), "")
            if resolved:
                out[key] = resolved
        else:
            out[key] = value
    return out


def open_source(
    meta: Mapping[str, str],
    *,
    environ: Mapping[str, str],
    lease: float,
    timeout: float = 10.0,
    dead_letter: str = "",
) -> Source:
    """The queue ``meta`` names, opened lazily (the first call connects)."""
    resolved = resolve_env(meta, environ)
    scaler_type = resolved.get("scalerType", "").strip()
    broker = SCALER_TYPES.get(scaler_type)
    if broker is None:
        raise MetadataError(
            f'parameter "scalerType" value "{scaler_type[:60]}" is not one `work` takes: use '
            f"{', '.join(SCALER_TYPES)}"
        )
    if broker == "redis-list":
        from scaler.brokers.redis import worklist
        from scaler.brokers.redis.metadata import RedisListMetadata
        from scaler.worker.redis_list import RedisListSource

        parsed = RedisListMetadata.parse(resolved, scaler_type=scaler_type)
        if parsed.framework() is not None:
            raise MetadataError(
                f'queueFormat "{parsed.queue_format}" is worked by {parsed.queue_format}\'s own '
                'worker; `work` takes items from a plain list (queueFormat "list")'
            )
        conn = parsed.connection(scaler_type)
        if conn.mode == "cluster" and (why := worklist.cluster_problem(parsed.list_name)):
            raise MetadataError(f'parameter "listName": {why}')
        return RedisListSource(conn, parsed.list_name, lease=lease, timeout=timeout,
                               dead_letter=dead_letter)  # fmt: skip
    if broker == "redis-stream":
        from scaler.brokers.redis import worklist
        from scaler.brokers.redis.metadata import RedisStreamMetadata
        from scaler.worker.redis_stream import RedisStreamSource

        stream = RedisStreamMetadata.parse(resolved, scaler_type=scaler_type)
        if not stream.consumer_group:
            raise MetadataError(
                'parameter "consumerGroup" is required by `work`: each worker is a consumer '
                "of that group (created at the stream's start when missing)"
            )
        conn = stream.connection(scaler_type)
        if conn.mode == "cluster" and (why := worklist.cluster_problem(stream.stream)):
            raise MetadataError(f'parameter "stream": {why}')
        return RedisStreamSource(conn, stream.stream, stream.consumer_group, lease=lease,
                                 timeout=timeout, dead_letter=dead_letter)  # fmt: skip
    if broker == "sqs":
        from scaler.brokers.sqs.metadata import SqsMetadata
        from scaler.worker.sqs import SqsSource

        sqs = SqsMetadata.parse(resolved, scaler_type=scaler_type).trigger(scaler_type).query
        return SqsSource(sqs, lease=lease, timeout=timeout, dead_letter=dead_letter)
    from scaler.brokers.rabbitmq.metadata import RabbitMetadata
    from scaler.worker.rabbitmq import RabbitSource

    rabbit = RabbitMetadata.parse(resolved, scaler_type=scaler_type)
    if rabbit.use_regex:
        raise MetadataError('parameter "useRegex": `work` takes from one named queue')
    query = rabbit.trigger(scaler_type).query
    return RabbitSource(query.server, query.queue, timeout=timeout, dead_letter=dead_letter)
