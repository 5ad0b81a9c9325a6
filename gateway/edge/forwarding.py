"""What the edge passes on to the gateway: the caller's credential, request id and trace.

The credential is forwarded as sent (``Authorization`` as ``authorization``,
``X-Api-Key`` as ``x-api-key``); the gateway decides whether it is valid. A
request without one gets the demo tenant's key only when demo credentials are
on and it was addressed to a loopback host name (see edge.demo).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

import grpc
from opentelemetry import propagate

from gateway.edge.demo import DEMO_TENANT_HEADER, DemoCredentials
from gateway.edge.errors import EdgeError
from gateway.edge.settings import is_loopback
from runtime.context import REQUEST_ID_HEADER

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# gRPC metadata values must be printable ASCII; anything else cannot be carried.
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")


def request_id(headers: Mapping[str, str]) -> str:
    """The caller's ``X-Request-Id`` when well formed, else a fresh one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def loopback_host(headers: Mapping[str, str]) -> bool:
    """Whether the request names this machine in its Host header.

    Demo credentials are applied only then: a page of another site whose name
    was rebound to 127.0.0.1 (DNS rebinding) sends its own name as Host.
    """
    host = headers.get("host", "")
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    return is_loopback(name)


def _credential(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not _PRINTABLE.match(value):
        raise EdgeError(
            401,
            grpc.StatusCode.UNAUTHENTICATED,
            f"the {name} header is empty or not printable ASCII",
            reason="MALFORMED_CREDENTIAL",
            metadata={"header": name},
        )
    return value


def metadata(
    headers: Mapping[str, str], *, rid: str, demo: DemoCredentials | None
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata for the gateway call made on behalf of this HTTP request."""
    items: list[tuple[str, str]] = [(REQUEST_ID_HEADER, rid)]
    authorization = _credential(headers, AUTHORIZATION_HEADER)
    api_key = _credential(headers, API_KEY_HEADER)
    if authorization is not None:
        items.append((AUTHORIZATION_HEADER, authorization))
    if api_key is not None:
        items.append((API_KEY_HEADER, api_key))
    if authorization is None and api_key is None and demo is not None and loopback_host(headers):
        items.append((API_KEY_HEADER, demo.key_for(headers.get(DEMO_TENANT_HEADER))))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    items.extend(carrier.items())
    return tuple(items)
