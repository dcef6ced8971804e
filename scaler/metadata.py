"""Typed trigger metadata: declare each key once, parse KEDA's string map into it.

A metadata class is a frozen, keyword-only dataclass whose fields are declared
with :func:`key`; the field's annotation picks the parser (``str``, ``int``,
``float``, ``bool``, ``tuple[str, ...]`` for comma lists, ``Secret | None`` for
credentials). :meth:`TriggerMetadata.parse` reads every key, applies defaults and
per-key checks, then calls :meth:`TriggerMetadata.validate` for the rules that
involve several keys. Every problem is a :class:`~scaler.errors.MetadataError`
that quotes the key, the value and what is allowed, like KEDA's typed config.

Parsing follows KEDA's typed config: every value is trimmed first, booleans are
``strconv.ParseBool`` spellings, numbers follow JSON's grammar (``json.Unmarshal``)
and integers fit int64, list items are trimmed. An empty value is the same as an
absent key (KEDA drops ``...FromEnv`` keys whose variable is
empty). A key declared ``from_env`` is also read as ``<key>FromEnv``, which KEDA
forwards already resolved from the workload's environment; the plain key wins,
as in KEDA's lookup order.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import hmac
import math
import os
import re
import types
import typing
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from scaler.errors import MetadataError
from scaler.guard import quoted

if TYPE_CHECKING:
    from scaler.trigger import AnyTrigger

_SALT = os.urandom(16)  # per process: digests are comparable only within one server


class Secret:
    """A credential: compared and hashed by a salted digest, never printed."""

    __slots__ = ("_value", "digest")

    def __init__(self, value: str) -> None:
        self._value = value
        self.digest = hmac.new(_SALT, value.encode(), hashlib.sha256).hexdigest()[:24]

    def reveal(self) -> str:
        """The clear value, for handing to a broker client and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self.digest, other.digest)

    def __hash__(self) -> int:
        return hash(("Secret", self.digest))


def fingerprint(obj: object) -> Hashable:
    """A hashable identity of a (nested) dataclass with every Secret reduced to its digest.

    Used for cache and pool keys, so they never hold a credential in clear.
    """
    if isinstance(obj, Secret):
        return ("secret", obj.digest)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (
            type(obj).__qualname__,
            tuple(fingerprint(getattr(obj, f.name)) for f in dataclasses.fields(obj)),
        )
    if isinstance(obj, tuple):
        return tuple(fingerprint(item) for item in obj)
    if isinstance(obj, Hashable):
        return obj
    raise TypeError(f"cannot fingerprint {type(obj).__name__}")


_REQUIRED = object()
_SPEC = "scaler.metadata.key"

# A check returns None when the value is fine, else the text for "must be ...". Any:
# each check takes its own key's type (a float, a str), which the field annotation fixes.
Check = Callable[[Any], str | None]


def positive(value: float) -> str | None:
    return None if value > 0 else "greater than 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "0 or greater"


def one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else "one of " + ", ".join(f'"{a}"' for a in allowed)

    return check


#: What a key says about a connection, for the rules that keep credentials bound to
#: their broker (credential sets, ClusterTriggerAuthentications): ``target`` names
#: where it goes (a host, an address, an endpoint), ``port`` narrows a target,
#: ``identity`` says whom the scaler becomes. A trigger using credentials it does not
#: own may set none of them.
Role = Literal["", "target", "port", "identity"]


@dataclass(frozen=True)
class KeySpec:
    name: str
    aliases: tuple[str, ...]
    from_env: bool
    secret: bool
    check: Check | None
    doc: str
    plain: bool  # False: only the FromEnv form is read
    auth_only: bool = False  # read only from a TriggerAuthentication's parameters
    #: KEDA's ``order=`` for a key a TriggerAuthentication parameter may fill, as its
    #: typed config tag spells it with ``tm`` (triggerMetadata), ``env`` (resolvedEnv)
    #: and ``auth`` (authParams): "tm;auth;env", "tm;env;auth", "tm;auth", "auth;env".
    #: Empty: no parameter fills it.
    auth_order: str = ""
    role: Role = ""

    def every_name(self) -> tuple[str, ...]:
        """The key and its aliases (the plain forms a rule about the key covers)."""
        return (self.name, *self.aliases)

    def names(self) -> tuple[str, ...]:
        """Metadata keys to look up, in KEDA's order: the key(s), then their FromEnv forms."""
        plain = (self.name, *self.aliases)
        if self.auth_only:
            return plain
        env = tuple(f"{n}FromEnv" for n in plain) if self.from_env else ()
        return (plain if self.plain else ()) + env


# key(), secret_key() and auth_key() return Any, as dataclasses.field does: the
# field's annotation gives the type, and parse() fills it with what _parser_for made.
def key(
    name: str,
    *,
    default: object = _REQUIRED,
    aliases: tuple[str, ...] = (),
    from_env: bool = False,
    check: Check | None = None,
    secret: bool = False,
    doc: str = "",
    auth_order: str = "",
    role: Role = "",
) -> Any:
    """Declare a metadata field: its KEDA key name, default, checks and a one-line doc.

    ``secret`` keeps the value out of error messages; ``auth_order`` and ``role`` are
    :class:`KeySpec`'s."""
    spec = KeySpec(
        name=name,
        aliases=aliases,
        from_env=from_env,
        secret=secret,
        check=check,
        doc=doc,
        plain=True,
        auth_order=auth_order,
        role=role,
    )
    meta = {_SPEC: spec}
    if default is _REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def secret_key(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    plain: bool = True,
    doc: str = "",
    auth_order: str = "",
    role: Role = "",
) -> Any:
    """Declare an optional credential: read as ``<name>FromEnv`` and, unless
    ``plain=False``, also as ``<name>``."""
    spec = KeySpec(
        name=name, aliases=aliases, from_env=True, secret=True, check=None, doc=doc, plain=plain,
        auth_order=auth_order, role=role,
    )  # fmt: skip
    return field(default=None, metadata={_SPEC: spec})


def auth_key(
    name: str, *, aliases: tuple[str, ...] = (), secret: bool = True, doc: str = ""
) -> Any:
    """Declare an optional parameter that KEDA's built-in scaler reads only from a
    TriggerAuthentication (``order=authParams``): never from trigger metadata."""
    spec = KeySpec(
        name=name, aliases=aliases, from_env=False, secret=secret, check=None, doc=doc,
        plain=True, auth_only=True,
    )  # fmt: skip
    return field(default=None if secret else "", metadata={_SPEC: spec})


# KEDA parses numbers with encoding/json (scalersconfig/typed_config.go): JSON's
# grammar, so no "+5", "007", ".5", "1_000", "0x10", Unicode digits or NaN, and an
# integer key refuses "5.0" and anything beyond int64.
_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)", re.ASCII)
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INT64 = (-(2**63), 2**63 - 1)
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _parse_int(raw: str) -> int:
    if not _JSON_INT.fullmatch(raw):
        raise ValueError("a whole number (JSON syntax: digits, optional leading -)")
    value = int(raw)
    if not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("a whole number within int64")
    return value


def _parse_float(raw: str) -> float:
    if not _JSON_NUMBER.fullmatch(raw):
        raise ValueError("a number (JSON syntax, e.g. 5, 0.5 or 1e3)")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("a number within float64 range")
    return value


def _parse_bool(raw: str) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError('"true" or "false"')


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parser_for(annotation: object) -> Callable[[str], object]:
    if annotation is str:
        return str
    if annotation is int:
        return _parse_int
    if annotation is float:
        return _parse_float
    if annotation is bool:
        return _parse_bool
    if typing.get_origin(annotation) is tuple:
        return _parse_list
    if isinstance(annotation, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if inner == [Secret]:
            return Secret
        if len(inner) == 1:
            return _parser_for(inner[0])
    raise TypeError(f"no metadata parser for {annotation!r}")


@dataclass(frozen=True)
class _Field:
    attr: str
    spec: KeySpec
    parse: Callable[[str], object]
    required: bool


_FIELDS: dict[type, tuple[_Field, ...]] = {}


def _placeholder(parse: Callable[[str], object]) -> object:
    """An empty value of a required field's type, for a lenient parse."""
    if parse is Secret:
        return None
    return {str: "", _parse_int: 0, _parse_float: 0.0, _parse_bool: False}.get(parse, ())


def _fields_of(cls: type) -> tuple[_Field, ...]:
    """The declared keys of a metadata class, computed once per class."""
    if (known := _FIELDS.get(cls)) is not None:
        return known
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_SPEC)
        if spec is None:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append(_Field(f.name, spec, _parser_for(hints[f.name]), required))
    _FIELDS[cls] = tuple(out)
    return _FIELDS[cls]


_SHOWN = 100  # characters of a value quoted in an error


def _shown(spec: KeySpec, raw: str) -> str:
    if spec.secret:
        return "<redacted>"
    return raw if len(raw) <= _SHOWN else f"{raw[:_SHOWN]}... ({len(raw)} characters)"


@dataclass(frozen=True, kw_only=True)
class TriggerMetadata:
    """Base of the per-scalerType metadata classes."""

    #: scalerType values this class parses, for docs and error messages.
    scaler_types: ClassVar[tuple[str, ...]] = ()
    #: True when a trigger without a ``target`` key still has a destination (SQS: AWS's
    #: own endpoints); otherwise credentials it does not own must name their target.
    default_target: ClassVar[bool] = False
    #: True when a TriggerAuthentication maps onto the keys as KEDA's
    #: ``GetAwsAuthorization`` does (pod identity, role, or access keys).
    aws_authorization: ClassVar[bool] = False

    @classmethod
    def parse(
        cls,
        raw: Mapping[str, str],
        *,
        scaler_type: str,
        lenient: bool = False,
        auth: Mapping[str, str] | None = None,
    ) -> Self:
        """Parse and validate every key; the first problem is a MetadataError.

        ``auth`` holds the TriggerAuthentication parameters that only KEDA's
        ``authParams`` can give (keys declared with :func:`auth_key`); trigger
        metadata never fills those.

        ``lenient`` is for GetMetricSpec's fallback: a bad or missing key takes its
        default (or an empty placeholder) and :meth:`validate` is skipped, so that
        :meth:`spec` can still name the metric; GetMetrics reports the problem."""
        values: dict[str, Any] = {}  # Any: each value was parsed for its own field
        for f in _fields_of(cls):
            try:
                found = cls._value(f, (auth or {}) if f.spec.auth_only else raw, scaler_type)
            except MetadataError:
                if not lenient:
                    raise
                found = None
            if found is not None:
                values[f.attr] = found[0]
            elif f.required and lenient:
                values[f.attr] = _placeholder(f.parse)
        parsed = cls(**values)
        if not lenient:
            parsed.validate(scaler_type)
        return parsed

    @staticmethod
    def _value(f: _Field, raw: Mapping[str, str], scaler_type: str) -> tuple[object] | None:
        # KEDA trims every value (strings.TrimSpace) and skips empty ones.
        found = next(((n, v) for n in f.spec.names() if (v := raw.get(n, "").strip()) != ""), None)
        if found is None:
            if f.required:
                hint = f": {f.spec.doc}" if f.spec.doc else ""
                raise MetadataError(
                    f'parameter "{f.spec.name}" is required for scalerType "{scaler_type}"{hint}'
                )
            return None
        name, text = found
        try:
            value = f.parse(text)
        except ValueError as exc:
            raise MetadataError(
                f'parameter "{name}" value "{_shown(f.spec, text)}" must be {exc}'
            ) from None
        if f.spec.check is not None and (need := f.spec.check(value)) is not None:
            raise MetadataError(f'parameter "{name}" value "{_shown(f.spec, text)}" must be {need}')
        return (value,)

    def spec(self, scaler_type: str) -> tuple[str, float]:
        """KEDA's metric name and the target, for GetMetricSpec; MetadataError when
        even these cannot be derived."""
        raise NotImplementedError

    def trigger(self, scaler_type: str) -> AnyTrigger:
        """What the parsed keys mean: the metric, target, activation and the query."""
        raise NotImplementedError

    def validate(self, scaler_type: str) -> None:
        """Rules across several keys; raise MetadataError. Default: none."""

    @classmethod
    def keys(cls) -> tuple[KeySpec, ...]:
        """The declared keys, for documentation and the rules derived from them."""
        return tuple(f.spec for f in _fields_of(cls))

    @classmethod
    def names_with_role(cls, *roles: Role) -> tuple[str, ...]:
        """The plain names (with aliases) of the keys declared with one of ``roles``."""
        return tuple(n for s in cls.keys() if s.role in roles for n in s.every_name())  # noqa: SIM118

    @classmethod
    def auth_only_names(cls) -> frozenset[str]:
        """Keys only a TriggerAuthentication gives (broker TLS material)."""
        return frozenset(n for s in cls.keys() if s.auth_only for n in s.every_name())  # noqa: SIM118

    @classmethod
    def required_target(cls) -> tuple[str, ...]:
        """Keys one of which credentials the trigger does not own must set (their
        broker), or none when the broker has a default destination."""
        return () if cls.default_target else cls.names_with_role("target")


#: ``measure``'s values: the queue's length (KEDA's own measure) or its oldest item's age.
MEASURES = ("length", "age")


@dataclass(frozen=True, kw_only=True)
class AgeKeys(TriggerMetadata):
    """``measure: age`` (docs/age.md), shared by every queue broker: the value is the
    seconds the oldest ready item has waited, with ``targetAge`` and ``activationAge``
    in the parts of the length's target and activation."""

    measure: str = key(
        "measure", default="length", check=one_of(*MEASURES),
        doc="length (KEDA's measure: items waiting) or age (seconds the oldest ready "
        "item has waited; docs/age.md)",
    )  # fmt: skip
    target_age: float | None = key(
        "targetAge", default=None, check=positive,
        doc="measure: age: the target age in seconds (per Job, or per replica with "
        "AverageValue)",
    )  # fmt: skip
    activation_age: float = key(
        "activationAge", default=0.0, check=non_negative,
        doc="measure: age: active when the oldest ready item has waited longer (seconds)",
    )  # fmt: skip

    @property
    def wants_age(self) -> bool:
        return self.measure == "age"

    def check_age(self, refused: str | None = None) -> None:
        """``measure`` against its keys; ``refused`` is this trigger's reason no age
        can be read (its broker keeps no timestamps), naming the alternative."""
        if not self.wants_age:
            ages = ((self.target_age, "targetAge"), (self.activation_age, "activationAge"))
            for given, name in ages:
                if given:
                    raise MetadataError(
                        f'parameter "{name}" applies to measure "age"; this trigger '
                        'measures "length" (set measure: age, or remove it)'
                    )
            return
        if refused is not None:
            raise MetadataError(f'parameter "measure" value "age" cannot be read here: {refused}')
        if self.target_age is None:
            raise MetadataError(
                'parameter "targetAge" is required with measure "age": the seconds of '
                'waiting each Job (or replica) absorbs, e.g. "60"'
            )

    def age_spec(self, name: str, target: float) -> tuple[str, float]:
        """KEDA's metric name and target: with ``measure: age``, the name ends in
        ``-age`` (a length and an age trigger on one queue stay apart) and the target
        is ``targetAge`` (1 s in a lenient parse that lacks it)."""
        if not self.wants_age:
            return name, target
        return f"{name}-age", self.target_age if self.target_age is not None else 1.0


#: Keys every external trigger may carry besides its scalerType's: KEDA's own for the
#: external scaler (scalerAddress, enableTLS, unsafeSsl), scalerType and credentialsRef.
COMMON_KEYS = ("scalerType", "scalerAddress", "enableTLS", "unsafeSsl", "credentialsRef")


@dataclass(frozen=True)
class UnknownKey:
    """A metadata key no scalerType's class reads: KEDA ignores it, and so do we, but
    it is usually a typo (``listLenght``) that leaves a default in its place."""

    key: str
    #: The known key it most resembles, if any.
    closest: str | None
    #: True when it is a key only a TriggerAuthentication can give.
    auth_only: bool = False

    def describe(self, scaler_type: str) -> str:
        shown = f'"{quoted(self.key)}"'
        if self.auth_only:
            return (
                f"{shown} is read only from a TriggerAuthentication, not from the trigger's "
                "metadata: it is ignored here"
            )
        hint = f' (did you mean "{self.closest}"?)' if self.closest else ""
        return (
            f'{shown} is not a key of scalerType "{scaler_type}"{hint}: KEDA and the scaler '
            "ignore it"
        )


def unknown_keys(cls: type[TriggerMetadata], metadata: Mapping[str, str]) -> tuple[UnknownKey, ...]:
    """The keys of ``metadata`` that ``cls`` does not read, each with its closest known
    key (by spelling, case aside), sorted by key (case aside): a gRPC map has no order."""
    auth_only = cls.auth_only_names()
    known = {n for spec in cls.keys() if not spec.auth_only for n in spec.names()}  # noqa: SIM118
    known.update(COMMON_KEYS)
    by_lower = {n.lower(): n for n in known}
    out = []
    for key_name in sorted(metadata, key=str.lower):
        if key_name in known:
            continue
        if key_name in auth_only:
            out.append(UnknownKey(key_name, None, auth_only=True))
            continue
        close = difflib.get_close_matches(key_name.lower(), list(by_lower), n=1, cutoff=0.75)
        out.append(UnknownKey(key_name, by_lower[close[0]] if close else None))
    return tuple(out)
