"""The tests dial loopback only, and this proves it.

An audit hook (PEP 578) sees every ``socket.connect`` and ``sendto`` this Python
process makes, asyncio's and every client library's included. A destination that is
not loopback (127.0.0.0/8, ::1, or an IPv4-mapped ``::ffff:127.x.y.z``) is refused before a packet leaves (OSError, as a firewall would
answer) and recorded, and the test that caused it fails (``tests/conftest.py``). So
a test of a refusal can count dials to a refused network: that count must be 0,
and it cannot be wrong by a dial that slipped through.

Host names other than ``localhost`` are refused too: the tests resolve nothing.
Subprocesses (brokers, KEDA's programs) and gRPC's C core are outside the hook; they
are started on loopback addresses by the tests themselves.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from typing import Any

_lock = threading.Lock()
#: Every refused destination, as "host:port", since the last take().
_refused: list[str] = []


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback  # the kernel dials the IPv4 address itself
    return ip.is_loopback


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.sendto"):
        return
    sock, address = args[0], args[-1]
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    host = str(address[0])
    if is_loopback(host):
        return
    with _lock:
        _refused.append(f"{host}:{address[1]}")
    raise ConnectionRefusedError(f"tests/loopback.py: the tests never dial {host}")


def install() -> None:
    """Once per process (an audit hook cannot be removed)."""
    if not getattr(sys, "_kqs_loopback_hook", False):
        sys.addaudithook(_hook)
        sys._kqs_loopback_hook = True  # type: ignore[attr-defined]


def take() -> list[str]:
    """The destinations refused since the last call, and forget them."""
    with _lock:
        out = list(_refused)
        _refused.clear()
    return out
