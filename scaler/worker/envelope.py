"""The enqueue helper's item: the payload with an id and its enqueue time.

On Redis lists (which keep bytes and nothing else) an item written by
``keda-queue-scaler enqueue`` is one JSON object::

    {"kqs": 1, "id": "<32 hex>", "at": <enqueue time, Unix ms>, "body": "<text>"}

with ``"body64"`` (base64) instead of ``"body"`` when the payload is not UTF-8. The
worker hands CMD the payload only. Anything else on the list is a raw item from
another producer: CMD receives it as it is, its id is a digest of its bytes, and it
has no enqueue time. Streams, SQS and RabbitMQ carry ids and times natively, so the
helper writes the payload as it is there (see each broker's module).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    item_id: str
    payload: bytes
    enqueued_at: float | None  # Unix seconds; None for a raw item


def new_id() -> str:
    return secrets.token_hex(16)


def wrap(payload: bytes, *, item_id: str, at_ms: int) -> bytes:
    """The envelope of ``payload``, as the enqueue helper writes it."""
    doc: dict[str, object] = {"kqs": 1, "id": item_id, "at": at_ms}
    try:
        doc["body"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        doc["body64"] = base64.b64encode(payload).decode("ascii")
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_id(raw: bytes) -> str:
    """A raw item's id: the SHA-1 of its bytes (Redis computes the same in Lua)."""
    return hashlib.sha1(raw).hexdigest()  # noqa: S324 (an identity, not a signature)


def unwrap(raw: bytes) -> Item:
    """The item in ``raw``: an envelope opened, or a raw item as it is."""
    if raw.startswith(b'{"kqs":'):
        try:
            doc = json.loads(raw)
            if isinstance(doc, dict) and doc.get("kqs") == 1 and isinstance(doc.get("id"), str):
                at = doc.get("at")
                when = at / 1000 if isinstance(at, int) and not isinstance(at, bool) else None
                if isinstance(doc.get("body"), str):
                    return Item(doc["id"], doc["body"].encode("utf-8"), when)
                if isinstance(doc.get("body64"), str):
                    return Item(doc["id"], base64.b64decode(doc["body64"], validate=True), when)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            pass  # not ours after all: a raw item
    return Item(digest_id(raw), raw, None)
