"""Finding runs of free loopback ports for a mesh started on non-default ports.

Tests start several meshes, sometimes in parallel, so each needs a run of
consecutive ports (service i listens on ``base + i``) that nothing else holds.
"""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

# Ports are picked below the kernel's ephemeral range: an ephemeral port that
# is free now may be taken by any outgoing connection before a service binds it.
_LOW = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_ATTEMPTS = 200


class NoFreePortsError(RuntimeError):
    """No run of free ports was found."""


def _ephemeral_start() -> int:
    """First port of the kernel's ephemeral range (Linux), else the IANA default."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def ports_free(base: int, count: int, host: str = "127.0.0.1") -> bool:
    """Whether ``base .. base+count-1`` can all be bound on ``host`` right now."""
    with ExitStack() as stack:
        for port in range(base, base + count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            # As gRPC servers bind: a port in TIME_WAIT is usable, a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_base_port(count: int, *, host: str = "127.0.0.1") -> int:
    """The first port of ``count`` consecutive ports that are free on ``host``.

    The start is random so that parallel test processes rarely race for the
    same run; a race can still happen (the ports are released before use), in
    which case the losing service fails to bind and its start error says so.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    high = _ephemeral_start() - count
    if high <= _LOW:
        raise NoFreePortsError(f"no room for {count} ports below the ephemeral range")
    for _ in range(_ATTEMPTS):
        base = random.randrange(_LOW, high)
        if ports_free(base, count, host):
            return base
    raise NoFreePortsError(f"no run of {count} free ports found on {host}")
