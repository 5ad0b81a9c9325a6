"""Who a call acts for, once the gateway has authenticated it."""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_ROLE = "service"
"""A tenant's service key: acts for any customer of its tenant."""
ADMIN_ROLE = "admin"
"""A tenant's operator key: what a service key may do (the agents' queue included)."""
CUSTOMER_ROLE = "customer"
"""An end user's bearer token: acts only as the customer it names."""
KEY_ROLES = frozenset({SERVICE_ROLE, ADMIN_ROLE})
"""The roles an API key may hold."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a credential stands for."""

    tenant_id: str
    """Tenant (client company) the caller acts for."""
    team_id: str
    """Team that pays for the calls."""
    role: str
    """``service`` or ``admin`` (API keys), ``customer`` (an end user's token)."""
    principal_id: str = ""
    """Stable id for audit: ``key:<key id>`` or ``user:<token subject>``."""
    user_id: str = ""
    """The customer the credential is bound to; "" for service keys (any customer)."""

    @property
    def end_user(self) -> bool:
        """Whether the credential is an end user's, bound to one customer."""
        return bool(self.user_id)
