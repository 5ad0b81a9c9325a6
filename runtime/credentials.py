"""API keys of the embedded default: generated at first start, never committed.

The file holds plaintext keys for local clients (mode 0600); the gateway keeps
only their SHA-256 digests in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_ENV = "WAYBILL_CREDENTIALS_FILE"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a credential stands for."""

    tenant_id: str
    """Tenant (client company) the caller acts for."""
    team_id: str
    """Team that pays for the calls."""
    role: str
    """``service`` (acts for the tenant's customers) or ``admin``."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key and its principal."""

    api_key: str
    principal: Principal


def digest(api_key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def generate(path: Path, tenants: tuple[str, ...], *, team_id: str = "support") -> list[ApiKey]:
    """Write one fresh service key per tenant to ``path`` unless it already exists."""
    if path.exists():
        return load(path)
    keys = [
        ApiKey(f"wb_{tenant}_{secrets.token_urlsafe(24)}", Principal(tenant, team_id, "service"))
        for tenant in tenants
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "keys": [
            {
                "api_key": k.api_key,
                "tenant_id": k.principal.tenant_id,
                "team_id": k.principal.team_id,
                "role": k.principal.role,
            }
            for k in keys
        ]
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2)
    return keys


def load(path: Path) -> list[ApiKey]:
    """Read a credentials file."""
    data = json.loads(path.read_text())
    return [
        ApiKey(
            item["api_key"],
            Principal(
                item["tenant_id"], item.get("team_id", "support"), item.get("role", "service")
            ),
        )
        for item in data["keys"]
    ]


def key_for(path: Path, tenant_id: str) -> str:
    """The first key of ``tenant_id`` in a credentials file (for local clients)."""
    for key in load(path):
        if key.principal.tenant_id == tenant_id:
            return key.api_key
    raise KeyError(f"no key for tenant {tenant_id!r} in {path}")
