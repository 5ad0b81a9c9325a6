"""``POST /v1/demo-token``: a short-lived end-user token for one demo customer.

Embedded default only: the edge has a signing key only when the launcher gave
it one (``WAYBILL_EDGE_DEMO_SIGNING_KEY``, refused unless the edge listens on
loopback), and answers only a client connected from this machine that names
this machine in its Host header (a page of another site rebound to 127.0.0.1
sends its own name). The chat page asks for a token for the customer it
picked and sends it as ``Authorization: Bearer`` with that customer's turns,
so the gateway holds the page to that one customer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import grpc
from starlette.requests import Request

from gateway.demo_tokens import DemoTokenSigner
from gateway.edge.demo import DEMO_TENANT_HEADER, DemoCredentials
from gateway.edge.errors import EdgeError, invalid_argument
from gateway.edge.forwarding import loopback_host
from gateway.edge.settings import is_loopback

PATH = "/v1/demo-token"
_USER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
"""The contract's rule for a ``user_id``."""


def _off() -> EdgeError:
    return EdgeError(
        404,
        grpc.StatusCode.NOT_FOUND,
        "demo tokens are served only by the embedded default (waybill up)",
        reason="DEMO_TOKENS_OFF",
    )


def _not_local() -> EdgeError:
    return EdgeError(
        403,
        grpc.StatusCode.PERMISSION_DENIED,
        "demo tokens are only given to clients on this machine",
        reason="LOOPBACK_ONLY",
    )


def check_caller(
    request: Request, *, signer: DemoTokenSigner | None, demo: DemoCredentials | None
) -> tuple[DemoTokenSigner, DemoCredentials]:
    """The signer and demo tenants when this caller may have a token, else the refusal."""
    if signer is None or demo is None:
        raise _off()
    client = request.client.host if request.client is not None else ""
    if not is_loopback(client) or not loopback_host(request.headers):
        raise _not_local()
    return signer, demo


def issue(
    values: dict[str, Any],
    request: Request,
    *,
    signer: DemoTokenSigner,
    demo: DemoCredentials,
) -> dict[str, Any]:
    """The token response for a body ``{"userId": ...}`` (tenant: the demo tenant header)."""
    unknown = sorted(set(values) - {"userId", "user_id"})
    if unknown:
        raise invalid_argument(
            f"unknown field {unknown[0]!r}", reason="UNKNOWN_FIELD", field_path=unknown[0]
        )
    user_id = values.get("userId", values.get("user_id"))
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise invalid_argument(
            "userId must match ^[a-z0-9][a-z0-9_-]{2,63}$",
            reason="string.pattern",
            field_path="user_id",
        )
    tenant = request.headers.get(DEMO_TENANT_HEADER) or demo.tenants[0]
    if tenant not in demo.tenants:
        demo.key_for(tenant)  # the 400 that names the demo tenants
    minted = signer.issue(tenant_id=tenant, user_id=user_id)
    expires = datetime.fromtimestamp(minted.expires_at, UTC)
    return {
        "token": minted.token,
        "tokenType": "Bearer",
        "expiresIn": signer.ttl_s,
        "expireTime": expires.isoformat().replace("+00:00", "Z"),
        "tenant": tenant,
        "userId": user_id,
    }
