"""The local clients' API keys (plaintext) of the embedded default, never committed.

The launcher writes this file (mode 0600) at first start for the clients on
this machine (the CLI chat, the REST edge's demo credentials, benches, tests),
which read keys from it with :func:`key_for`. The gateway never reads it: it
reads the hashed key store (``gateway.key_store``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runtime.principal import Principal

__all__ = ["CREDENTIALS_ENV", "ApiKey", "Principal", "dumps", "key_for", "load"]

CREDENTIALS_ENV = "WAYBILL_CREDENTIALS_FILE"
"""Where local clients look for the file when no run directory says."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key and its principal."""

    api_key: str
    principal: Principal


def dumps(keys: Iterable[ApiKey]) -> str:
    """The file's text for ``keys``."""
    payload = {
        "keys": [
            {
                "api_key": k.api_key,
                "key_id": k.principal.principal_id.removeprefix("key:"),
                "tenant_id": k.principal.tenant_id,
                "team_id": k.principal.team_id,
                "role": k.principal.role,
            }
            for k in keys
        ]
    }
    return json.dumps(payload, indent=2) + "\n"


def load(path: Path) -> list[ApiKey]:
    """Read a credentials file."""
    data = json.loads(path.read_text())
    return [
        ApiKey(
            item["api_key"],
            Principal(
                item["tenant_id"],
                item.get("team_id", "support"),
                item.get("role", "service"),
                principal_id=f"key:{item['key_id']}" if item.get("key_id") else "",
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
