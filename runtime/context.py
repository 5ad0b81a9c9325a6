"""Per-call context carried in contextvars: each RPC runs in its own task."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

from runtime.principal import Principal

REQUEST_ID_HEADER = "x-request-id"
TENANT_HEADER = "x-waybill-tenant"
PRINCIPAL_HEADER = "x-waybill-principal"
"""The principal's stable id (``key:<id>`` or ``user:<sub>``); the other parts below."""
TEAM_HEADER = "x-waybill-team"
ROLE_HEADER = "x-waybill-role"
CUSTOMER_HEADER = "x-waybill-customer"

request_id: ContextVar[str] = ContextVar("waybill_request_id", default="")
"""Id of the turn this call serves (propagated across hops)."""
tenant_id: ContextVar[str] = ContextVar("waybill_tenant_id", default="")
"""Tenant the call acts for (propagated across hops)."""
deadline: ContextVar[float | None] = ContextVar("waybill_deadline", default=None)
"""Absolute deadline (time.monotonic) of the inbound call, None when it had none."""
principal: ContextVar[Principal | None] = ContextVar("waybill_principal", default=None)
"""Who the call acts for, as the gateway authenticated it (propagated across hops;
None when the call did not come through the gateway)."""


def principal_metadata(value: Principal) -> list[tuple[str, str]]:
    """The metadata that carries ``value`` to the next hop (the tenant travels apart)."""
    items = [
        (PRINCIPAL_HEADER, value.principal_id),
        (TEAM_HEADER, value.team_id),
        (ROLE_HEADER, value.role),
    ]
    if value.user_id:
        items.append((CUSTOMER_HEADER, value.user_id))
    return items


def principal_from(metadata: Mapping[str, str]) -> Principal | None:
    """The principal an inbound call carries, or None.

    Inside the mesh these headers come from the gateway, which sets them from the
    credential it verified; the gateway itself never trusts them (it authenticates
    every call and replaces them).
    """
    principal_id = metadata.get(PRINCIPAL_HEADER)
    tenant = metadata.get(TENANT_HEADER)
    if not principal_id or not tenant:
        return None
    return Principal(
        tenant_id=tenant,
        team_id=metadata.get(TEAM_HEADER, ""),
        role=metadata.get(ROLE_HEADER, ""),
        principal_id=principal_id,
        user_id=metadata.get(CUSTOMER_HEADER, ""),
    )
