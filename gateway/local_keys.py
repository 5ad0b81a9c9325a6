"""The embedded default's keys: hashed for the gateway, plaintext for local clients.

At each start the launcher makes sure every demo tenant has a key that works:
one in the local clients' file (``credentials.json``, mode 0600) whose digest
is active in the store (``api_keys.json``, mode 0600). A key missing from
either, revoked or expired is replaced by a fresh one. The plaintext goes only
to the clients' file; the store gets its digest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.key_store import KeyStore, digest, write_private
from runtime import credentials
from runtime.credentials import ApiKey

DEMO_TEAM = "support"


def ensure(
    *,
    store: Path,
    clients: Path,
    tenants: Sequence[str],
    clock: Callable[[], float] = time.time,
) -> list[ApiKey]:
    """One working service key per tenant; the clients' keys, in tenant order."""
    keys = KeyStore(store, clock=clock)
    active = {r.sha256: r for r in keys.records() if r.state(clock()) == "active"}
    found: dict[str, ApiKey] = {}
    if clients.exists():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            for key in credentials.load(clients):
                record = active.get(digest(key.api_key))
                if record is not None and record.tenant_id not in found:
                    found[record.tenant_id] = ApiKey(key.api_key, record.principal())
    changed = False
    for tenant in tenants:
        if tenant in found:
            continue
        issued = keys.create(tenant_id=tenant, team_id=DEMO_TEAM, name=f"{tenant} local clients")
        found[tenant] = ApiKey(issued.api_key, issued.record.principal())
        changed = True
    result = [found[t] for t in tenants]
    if changed or not clients.exists():
        write_private(clients, credentials.dumps(result))
    return result
