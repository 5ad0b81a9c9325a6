"""Per-call context carried in contextvars: each RPC runs in its own task."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
TENANT_HEADER = "x-waybill-tenant"

request_id: ContextVar[str] = ContextVar("waybill_request_id", default="")
"""Id of the turn this call serves (propagated across hops)."""
tenant_id: ContextVar[str] = ContextVar("waybill_tenant_id", default="")
"""Tenant the call acts for (propagated across hops)."""
deadline: ContextVar[float | None] = ContextVar("waybill_deadline", default=None)
"""Absolute deadline (time.monotonic) of the inbound call, None when it had none."""
