"""Kubernetes objects as they come from YAML, JSON or the API: typed views.

An object is a ``Doc``, a mapping whose values are whatever the document holds. The
helpers read a field as the shape the code needs and fall back to an empty one when
the document holds something else (a manifest or an object can be malformed; the
API server, KEDA and we then read it the same forgiving way), so no code reaching
into a document needs ``Any``.
"""

from __future__ import annotations

from collections.abc import Mapping

Doc = Mapping[str, object]


def mapping(value: object) -> Doc:
    """``value`` when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def mappings(value: object) -> list[Doc]:
    """The mappings of a list (others skipped); an empty list for anything else."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def text(value: object, default: str = "") -> str:
    """A scalar as text; ``default`` for a missing (None) one."""
    return default if value is None else str(value)


def path(doc: object, *keys: str) -> object:
    """``doc[k1][k2]...``, or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc
