"""``measure: age`` on Redis: the times the reads return, turned into the oldest
ready item's time (Unix seconds). No I/O: the client runs the scripts.

- A format's script returns candidates as ``"<unit>:<value>"``: ``ms`` and ``s``
  (Unix milliseconds or seconds), ``iso`` (RQ's ``enqueued_at``, UTC), or
  ``none:<key>`` for a job that keeps no time. The oldest is the smallest.
- A list's ends (:data:`ENDS`) are read in one script; an item's time is the
  enqueue helper's envelope (``"at"``, ms) or the JSON field ``ageField`` names.
"""

from __future__ import annotations

import datetime
import json
import math

from scaler.brokers.redis.formats.base import lua
from scaler.errors import UnsupportedState

#: A number above this is read as milliseconds (as seconds it would be past 5000 AD).
MS_ABOVE = 100_000_000_000

#: The largest list item whose time a read fetches: a bigger one (any tenant may push
#: a 512 MB item) is refused where it lies, never sent to the scaler.
MAX_ITEM = 1 << 20

#: KEYS[1] a list, ARGV[1] MAX_ITEM: its type, its length and its two ends, in one
#: round trip; an end larger than ARGV[1] bytes is replaced by its size, as a number.
_ENDS = """
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'list' then return {t, 0, false, false} end
local ends = {t, redis.call('LLEN', KEYS[1])}
for _, at in ipairs({0, -1}) do
  local item = redis.call('LINDEX', KEYS[1], at)
  if item and #item > tonumber(ARGV[1]) then item = #item end
  table.insert(ends, item)
end
return ends
"""


#: The read-only script that reads a list's type, length and ends.
ENDS = lua(_ENDS)


def _text(raw: object) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _number(value: float) -> float | None:
    if not math.isfinite(value) or value < 0:
        return None
    return value / 1000 if value > MS_ABOVE else value


def _iso(text: str) -> float | None:
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)  # RQ writes UTC with a "Z"
    return when.timestamp()


def oldest_of(candidates: object, *, framework: str, where: str) -> float | None:
    """The oldest of a format script's candidates, or None when nothing is ready;
    UnsupportedState when a ready job keeps no readable time."""
    if not isinstance(candidates, list):
        raise UnsupportedState(f"{where} answered the {framework} age with no times")
    found: list[float] = []
    for raw in candidates:
        unit, _, value = _text(raw).partition(":")
        when: float | None = None
        if unit in ("ms", "s"):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number >= 0:
                when = number / 1000 if unit == "ms" else number
        elif unit == "iso":
            when = _iso(value)
        if when is None:
            key = value if unit == "none" else "a job"
            raise UnsupportedState(
                f'{framework}: a ready job ("{key[:200]}" on {where}) keeps no enqueue time '
                "the scaler can read, so its age is unknown; see docs/age.md"
            )
        found.append(when)
    return min(found) if found else None


def item_time(raw: bytes, age_field: str) -> float | None:
    """A list item's enqueue time: the enqueue helper's envelope, else the JSON field
    ``age_field`` (a number of Unix seconds or milliseconds, or ISO 8601 with a
    zone); None when the item has neither."""
    if not raw.startswith(b"{"):
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    at = doc.get("at")
    if doc.get("kqs") == 1 and isinstance(at, int) and not isinstance(at, bool) and at >= 0:
        return at / 1000  # the enqueue helper's envelope: Unix milliseconds
    if not age_field:
        return None
    value = doc.get(age_field)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(float(value))
    if isinstance(value, str):
        when = _iso(value)
        return when if when is not None and "T" in value else None
    return None


def list_oldest(
    ends: tuple[bytes | int | None, bytes | int | None], *, key: str, age_field: str, where: str
) -> float | None:
    """The older of a list's two ends' times (a FIFO list's oldest item is at one
    end, whichever side its producers push to), None for an empty list;
    UnsupportedState when an end has no time, or is larger than MAX_ITEM (its size)."""
    found: list[float] = []
    for raw in ends:
        if raw is None:
            continue
        if isinstance(raw, int):
            raise UnsupportedState(
                f'an item at an end of list "{key}" on {where} is {raw:,} bytes, more than '
                f"the {MAX_ITEM:,} a read of its time fetches: keep payloads elsewhere and "
                "queue a reference, or measure the length (docs/age.md)"
            )
        when = item_time(raw, age_field)
        if when is None:
            how = (
                f'a JSON object with the number or ISO 8601 field "{age_field}"'
                if age_field
                else 'written by "keda-queue-scaler enqueue", or JSON with a time field '
                'named by "ageField"'
            )
            raise UnsupportedState(
                f'an item of list "{key}" on {where} carries no enqueue time, so its age is '
                f"unknown: measure age needs items {how} (docs/age.md)"
            )
        found.append(when)
    return min(found) if found else None


#: KEYS[1] a stream, ARGV[1] a consumer group or "": the id of the first entry the
#: group has not been given (after its last-delivered-id), or of the first entry
#: with no group (or a group not created yet); false for none.
_STREAM_HEAD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local start = '-'
if ARGV[1] ~= '' then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, last = nil, nil
    for i = 1, #group, 2 do
      if group[i] == 'name' then name = group[i + 1] end
      if group[i] == 'last-delivered-id' then last = group[i + 1] end
    end
    if name == ARGV[1] and last then start = '(' .. last end
  end
end
local first = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)
if first[1] then return first[1][1] end
return false
"""


#: The read-only script that finds a stream's first undelivered entry's id.
STREAM_HEAD = lua(_STREAM_HEAD)


def stream_id_time(entry_id: object) -> float | None:
    """An entry id's time (its milliseconds part, the Redis server's clock when it
    was added, unless the producer chose the id), None for no entry."""
    if entry_id is None:
        return None
    ms, _, _ = _text(entry_id).partition("-")
    return int(ms) / 1000 if ms.isdigit() else None
