"""Recognising text that names the mesh's insides: methods, services, hosts, tracebacks.

Messages cross hops and finally the public boundary. A peer's message that
names a gRPC method (``/waybill.orders.v1.OrdersService/GetShipment``), a
service, an address or a stack trace is not passed on: the mapping answers
with a plain message and the original goes to the log, under the trace id.
"""

from __future__ import annotations

import re

_INTERNAL = re.compile(
    r"""
      /[A-Za-z_][\w.]*\.[A-Za-z_]\w*/\w+     # a gRPC method path
    | \b[A-Z]\w*Service\b                     # a service name
    | \b(?:\d{1,3}\.){3}\d{1,3}\b             # an IPv4 address
    | \[[0-9a-fA-F:]*:[0-9a-fA-F:]*\](?::\d+)? # a bracketed IPv6 address
    | \b(?:localhost|ipv4|ipv6|unix|dns):\S*  # a host or a transport address
    | \blocalhost\b                          # the loopback host by name
    | \b[a-z][\w.-]*:\d{2,5}\b               # host:port (hosts start with a letter: not 14:00)
    | \bTraceback\b | \bFile\ "[^"]+",\ line  # a stack trace
    """,
    re.VERBOSE,
)


def names_internals(text: str) -> bool:
    """Whether ``text`` names a method, a service, an address or a stack trace."""
    return _INTERNAL.search(text) is not None


def public_message(text: str, *, fallback: str) -> str:
    """``text`` when it names nothing internal, else ``fallback``."""
    return fallback if names_internals(text) else text
