"""Demo credentials: let a browser on this machine act for a demo tenant without a key.

Only in the embedded default: the launcher passes the run's credentials file
(``WAYBILL_EDGE_DEMO_CREDENTIALS``) and the edge refuses it unless it listens on
loopback. A request that carries no credential of its own then gets the key of
the tenant it names in ``X-Waybill-Demo-Tenant`` (or the first tenant). Keys are
never sent to the browser; /healthz says that demo credentials are on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.edge.errors import invalid_argument
from runtime import credentials
from runtime.settings import SettingsError

DEMO_TENANT_HEADER = "x-waybill-demo-tenant"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """One key per demo tenant, read once at start."""

    keys: Mapping[str, str]
    """Tenant id -> API key."""

    @classmethod
    def load(cls, path: Path) -> DemoCredentials:
        """The first key of each tenant in a credentials file."""
        try:
            found = credentials.load(path)
        except FileNotFoundError:
            raise SettingsError(f"demo credentials file {path} does not exist") from None
        except (OSError, ValueError, KeyError) as exc:
            raise SettingsError(f"demo credentials file {path} is unreadable: {exc}") from None
        keys: dict[str, str] = {}
        for key in found:
            keys.setdefault(key.principal.tenant_id, key.api_key)
        if not keys:
            raise SettingsError(f"demo credentials file {path} holds no keys")
        return cls(keys)

    @property
    def tenants(self) -> list[str]:
        """Tenant ids, in file order (the first is the default)."""
        return list(self.keys)

    def key_for(self, tenant: str | None) -> str:
        """The key of ``tenant`` (the first tenant when None); 400 for an unknown one."""
        if tenant is None or tenant == "":
            return next(iter(self.keys.values()))
        try:
            return self.keys[tenant]
        except KeyError:
            raise invalid_argument(
                f"no demo tenant {tenant!r}; demo tenants: {', '.join(self.keys)}",
                reason="UNKNOWN_DEMO_TENANT",
                field_path="X-Waybill-Demo-Tenant",
            ) from None
