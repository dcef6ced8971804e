"""A container's environment as KEDA v2.21.0 resolves it: the one walk.

KEDA fills a trigger's ``...FromEnv`` keys and a TriggerAuthentication's ``env``
parameters from the workload's container with ``resolver.ResolveContainerEnv``
(pkg/scaling/resolver/scale_resolvers.go). This module restates it, and
``tests/keda/test_env_parity.py`` holds it against that very function on generated
Pod specs:

- the container: ``envSourceContainerName`` when given (an error when no container
  has that name), else the first (an error when there is none);
- ``envFrom`` in order, each a ConfigMap (checked first) or a Secret, every key with
  the source's ``prefix``; one that does not exist is an error unless ``optional``;
- then ``env`` in order, a later duplicate replacing an earlier one: a non-empty
  ``value`` with ``$(VAR)`` expanded from what is resolved so far (``$$`` is ``$``;
  an unknown or later name stays as written); ``valueFrom`` a Secret's or ConfigMap's
  key (a missing key is ``""``, a missing object an error unless ``optional``);
  ``fieldRef`` and ``resourceFieldRef`` skipped; an empty ``value`` is ``""``.

Where the objects come from is the caller's: ``serve --kubernetes`` reads its
watches' cache, ``explain --from-cluster`` the API server, ``explain`` on a file
nothing at all. A source the caller cannot read answers :data:`UNKNOWN`; its
variables are then reported in :attr:`Environment.unknown` (or taken from
``given``, the user's ``--env``), never guessed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from scaler.documents import Doc, mappings


class Unknown(enum.Enum):
    """A Secret or ConfigMap whose contents the caller cannot know (no cluster, or
    no right to read it): its variables are reported, not guessed."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN

#: (kind, name) -> the object's data; None when it does not exist; UNKNOWN.
Lookup = Callable[[str, str], Mapping[str, str] | Unknown | None]


class EnvError(Exception):
    """KEDA's resolver fails here: no such container, or a Secret or ConfigMap that
    does not exist and is not optional. The message names it."""


@dataclass
class Environment:
    """What KEDA would resolve. ``unknown`` maps each variable whose value lives in an
    :data:`UNKNOWN` object to where it lives; the key ``""`` lists ``envFrom``
    objects, which may hold any name."""

    values: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


def choose_container(containers: Sequence[Doc], name: str | None) -> Doc:
    """``ResolveContainerEnv``'s choice: the named container, else the first."""
    if not containers:
        raise EnvError("the workload has no containers")
    if name:
        for container in containers:
            if container.get("name") == name:
                return container
        raise EnvError(f'no container named "{name}" (envSourceContainerName)')
    return containers[0]


def expand(value: str, env: Mapping[str, str]) -> str:
    """``resolveEnvValue``: ``$(VAR)`` from ``env``, ``$$`` as ``$``, an unknown name or
    an unclosed ``$(`` kept as written, and a ``$`` within three bytes of the end kept.

    Byte for byte as KEDA's Go: it scans UTF-8 bytes, and ``$`` before any other byte
    is written as ``$`` and that byte taken as a code point (``$é`` becomes ``$Ã`` and
    a stray byte, which Go's JSON, like this, replaces with U+FFFD)."""
    raw = value.encode()
    out = bytearray()
    checkpoint = cursor = 0
    while cursor < len(raw):
        if raw[cursor] == 0x24 and cursor + 3 < len(raw):  # "$"
            out += raw[checkpoint:cursor]
            nxt, length = raw[cursor + 1], 1
            if nxt == 0x24:
                content = b"$"
            elif nxt == 0x28:  # "("
                content = b"$("
                for i in range(2, len(raw) - cursor):
                    if raw[cursor + i] == 0x29:  # ")"
                        name = raw[cursor + 2 : cursor + i]
                        found = env.get(name.decode("utf-8", "surrogateescape"))
                        content = found.encode() if found is not None else b"$(" + name + b")"
                        length = i
                        break
            else:
                content = b"$" + chr(nxt).encode()
            out += content
            cursor += length
            checkpoint = cursor + 1
        cursor += 1
    out += raw[checkpoint:]
    return out.decode("utf-8", "replace")


def _optional(ref: Doc) -> bool:
    return ref.get("optional") is True


def resolve(
    container: Doc, lookup: Lookup, *, given: Mapping[str, str] | None = None
) -> Environment:
    """The container's environment, in ``resolveEnv``'s order. ``given`` holds values
    for variables whose source is :data:`UNKNOWN` (``explain --env``)."""
    given = given or {}
    env = Environment()
    resolved = env.values
    unknown_sources: list[str] = []
    for source in mappings(container.get("envFrom")):
        prefix = str(source.get("prefix") or "")
        for field_name, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(field_name)
            if not isinstance(ref, Mapping):
                continue
            name = str(ref.get("name") or "")
            data = lookup(kind, name)
            if data is UNKNOWN:
                unknown_sources.append(f"{kind} {name}")
            elif data is None:
                if not _optional(ref):
                    raise EnvError(f'envFrom {kind} "{name}" does not exist and is not optional')
            else:
                for k, v in data.items():
                    resolved[prefix + k] = v
            break  # KEDA reads the ConfigMap of a source that names both
    for var in mappings(container.get("env")):
        name = str(var.get("name") or "")
        literal = var.get("value")
        frm = var.get("valueFrom")
        if literal:
            value = expand(str(literal), resolved)
        elif isinstance(frm, Mapping):
            found = _value_from(frm, name, lookup)
            if found is None:
                continue
            if found is UNKNOWN:
                where = _where(frm)
                if name not in given:
                    env.unknown[name] = where
                    resolved.pop(name, None)
                    continue
                value = given[name]
            else:
                value = found
        else:
            value = ""
        env.unknown.pop(name, None)
        resolved[name] = value
    if unknown_sources:
        env.unknown[""] = "envFrom " + ", ".join(unknown_sources)
    return env


def _value_from(frm: Doc, var: str, lookup: Lookup) -> str | Unknown | None:
    """A ``valueFrom``'s value; None when KEDA skips the variable."""
    for field_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        ref = frm.get(field_name)
        if not isinstance(ref, Mapping):
            continue
        obj = str(ref.get("name") or "")
        data = lookup(kind, obj)
        if data is UNKNOWN:
            return UNKNOWN
        if data is None:
            if _optional(ref):
                return None
            raise EnvError(f'env {var}: {kind} "{obj}" does not exist and is not optional')
        return str(data.get(str(ref.get("key") or ""), ""))
    return None  # fieldRef, resourceFieldRef: KEDA skips them


def _where(frm: Doc) -> str:
    for field_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        ref = frm.get(field_name)
        if isinstance(ref, Mapping):
            return f"{kind} {ref.get('name', '?')} key {ref.get('key', '?')}"
    return "?"
