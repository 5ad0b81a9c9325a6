"""What an authenticated principal may do in the gateway: the decisions, pure.

A service (or admin) key acts for any customer of its tenant. An end user's
token acts only as the customer it names: a request for another customer is
PERMISSION_DENIED with one message whether that customer exists or not (the
check never looks the customer up), and the tenant-wide reads (the customer
list, the agents' ticket queue) are not for end users. Tenants never mix:
every call is scoped to the principal's tenant, whatever the request says.
"""

from __future__ import annotations

from runtime.errors import PermissionDenied
from runtime.principal import Principal


def act_for(principal: Principal, user_id: str) -> None:
    """Allow acting for customer ``user_id`` of the principal's tenant, or refuse."""
    if principal.end_user and user_id != principal.user_id:
        raise PermissionDenied(
            "this credential may not act for that customer", reason="CUSTOMER_NOT_ALLOWED"
        )


def tenant_wide(principal: Principal) -> None:
    """Allow the tenant-wide reads and the agents' queue to tenant keys only."""
    if principal.end_user:
        raise PermissionDenied(
            "an end user's credential may not do this", reason="ROLE_NOT_ALLOWED"
        )
