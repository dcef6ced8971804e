"""Logging for the server: text or JSON lines on stderr, with secrets kept out.

Two layers keep credentials out of every log line, at every level:

- the broker client libraries (botocore, aiobotocore, urllib3, aiohttp, aiormq,
  pamqp) and the Kubernetes client never log below INFO, whatever ``--log-level``
  says: their debug output holds signed request headers, session tokens, connection
  URLs and (Kubernetes) response bodies, Secrets included;
- a filter on the handler rewrites every record (message and traceback) through
  :func:`redact`, which masks URL user info, Authorization headers and AWS secret
  fields, in case a library or an exception text carries one anyway.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback

#: Loggers held at INFO or above: their DEBUG records carry credentials.
QUIET_LIBRARIES = (
    "botocore", "aiobotocore", "boto3", "urllib3", "aiohttp", "aiormq", "pamqp", "kubernetes",
)  # fmt: skip

_PATTERNS = (
    # scheme://user:password@host -> scheme://user:***@host (a password may hold "/").
    (re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:'\"]*):[^\s@'\"]*@"), r"\1:***@"),
    # Authorization / X-Amz-Security-Token headers, in dict reprs or header lines.
    (
        re.compile(
            r"(?i)((?:authorization|x-amz-security-token|x-amz-signature|proxy-authorization)"
            r"['\"]?\s*[:=]\s*b?['\"]?)[^'\"\n,}]+"
        ),
        r"\1***",
    ),
    # Secret-looking fields: password=..., "SecretAccessKey": "...", aws_session_token ...
    (
        re.compile(
            r"(?i)((?:password|passwd|secret_?access_?key|session_?token|aws_secret_access_key"
            r"|aws_session_token|X-Amz-Credential)['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}&]+"
        ),
        r"\1***",
    ),
)


def unexpected(exc: BaseException) -> str:
    """An unexpected exception for the log: its type, the chain of causes and every
    frame, but no exception's message. A message may quote what a broker or an
    endpoint sent (a response body) or a value a trigger gave, which no log keeps."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_list(traceback.extract_tb(current.__traceback__)))
        parts.append(
            f"{type(current).__module__}.{type(current).__qualname__} (message withheld)\n{frames}"
        )
        current = current.__cause__ or current.__context__
    return "\ncaused by: ".join(parts).rstrip()


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and traceback through :func:`redact`."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self._formatter = formatter

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def configure(level: str, fmt: str) -> None:
    """Log ``level`` and up, as ``fmt`` (text or json), to stderr, secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(formatter))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    floor = max(logging.INFO, root.level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(floor)
