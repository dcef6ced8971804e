"""The Redis list layout that ``keda-queue-scaler work`` keeps beside a list, and the
read-only count of its states (``include: ready, active, expired`` with
``queueFormat: list``). No I/O here: the worker (``scaler.worker.redis_list``) and
the scaler's adapter both take their key names and scripts from this module, so
the two always agree.

For a list ``L`` (on Redis Cluster ``L`` needs a hash tag, so that every key below
shares its slot):

- ``L``                 the queue; producers LPUSH, workers take from the right;
- ``L:kqs:leases``      sorted set: claim id -> lease end (ms, the server's clock);
- ``L:kqs:claim:<id>``  a one-item list: the item a claim holds;
- ``L:kqs:attempts``    hash: an item's identity -> claims so far;
- ``L:dead``            dead-lettered items (the issue's ``<list>:dead``).

A claim is *active* while its lease runs and its claim list holds the item, and
*expired* once the lease has ended with the item still held: the next sweep (any
worker's start, or a running worker's periodic sweep) puts it back on ``L``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scaler.brokers.redis.formats.base import SCAN_LIMIT, lua, slot

WorkState = Literal["ready", "active", "expired"]
#: Every state, in the order the count returns them.
WORK_STATES: tuple[WorkState, ...] = ("ready", "active", "expired")


@dataclass(frozen=True)
class WorkKeys:
    """The keys of one worked list."""

    queue: str

    @property
    def leases(self) -> str:
        return f"{self.queue}:kqs:leases"

    @property
    def attempts(self) -> str:
        return f"{self.queue}:kqs:attempts"

    @property
    def claim_prefix(self) -> str:
        return f"{self.queue}:kqs:claim:"

    def claim(self, claim_id: str) -> str:
        return self.claim_prefix + claim_id

    @property
    def dead(self) -> str:
        return f"{self.queue}:dead"


def has_hash_tag(name: str) -> bool:
    """True when Redis Cluster hashes ``name`` by a tag, so ``name:...`` shares its slot."""
    start = name.find("{")
    return start != -1 and name.find("}", start + 1) > start + 1


def cluster_problem(name: str) -> str | None:
    """Why ``name`` cannot be worked on Redis Cluster, or None."""
    keys = WorkKeys(name)
    if has_hash_tag(name) and slot(keys.leases) == slot(name):
        return None
    return (
        f'the list "{name}" has no hash tag, so its lease and claim keys would live in other '
        f'hash slots than the list: name it with one, e.g. "{{{name}}}"'
    )


_COUNT = """
-- keda-queue-scaler: the states of a list worked by `keda-queue-scaler work` (read-only).
-- KEYS[1] the list, KEYS[2] its leases; ARGV[1] wanted states (r, a, e), ARGV[2] the
-- claim key prefix, ARGV[3] the most leases one count reads.
-- Returns {1, ready, active, expired} or {0, problem, key, detail}.
local want = {}
for c in string.gmatch(ARGV[1], '.') do want[c] = true end
for i, allowed in ipairs({'list', 'zset'}) do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= allowed then return {0, 'wrongtype', KEYS[i], t} end
end
local ready, active, expired = 0, 0, 0
if want.r then ready = redis.call('LLEN', KEYS[1]) end
if want.a or want.e then
  local n = redis.call('ZCARD', KEYS[2])
  if n > tonumber(ARGV[3]) then return {0, 'scan', KEYS[2], n} end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local leases = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #leases, 2 do
    if redis.call('EXISTS', ARGV[2] .. leases[i]) == 1 then
      if tonumber(leases[i + 1]) > now then active = active + 1 else expired = expired + 1 end
    end
  end
end
return {1, ready, active, expired}
"""


#: The read-only count: its source and the SHA1 EVALSHA runs it by.
COUNT = lua(_COUNT)


def count_args(
    keys: WorkKeys, states: tuple[WorkState, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(KEYS, ARGV) of one count of ``states``."""
    wanted = "".join(state[0] for state in states)
    return (keys.queue, keys.leases), (wanted, keys.claim_prefix, str(SCAN_LIMIT))
