"""One row of the ledger's journal of charges: what reports, exports and audits read.

A committed turn writes one row per generation it made (its model, tokens and
cost), or one row with ``model = "none"`` when it generated nothing, so every
turn counts once in ``requests`` however many generations it made (the row with
``first = True``). Costs are integer micro units of ``currency_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

NO_MODEL = "none"
"""``model`` of the row of a turn that made no generation (a tool-only answer)."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "TIMESTAMPTZ"),
    ("request_id", "VARCHAR"),
    ("reservation_id", "VARCHAR"),
    ("tenant_id", "VARCHAR"),
    ("team_id", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("feature_id", "VARCHAR"),
    ("model", "VARCHAR"),
    ("first", "BOOLEAN"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cost_micro_units", "BIGINT"),
    ("currency_code", "VARCHAR"),
    ("price_version", "VARCHAR"),
)
"""The columns of the Parquet export, in order, with their DuckDB types."""


@dataclass(frozen=True, slots=True)
class ChargeRow:
    """One generation of one committed turn (or the turn itself when it made none)."""

    time: datetime
    """When the charge was committed (timezone-aware, UTC)."""
    request_id: str
    """The turn's request id (the reservation's idempotency key)."""
    reservation_id: str
    """The reservation the charge settled."""
    tenant_id: str
    team_id: str
    user_id: str
    """The customer or the principal the turn acted for ("" when none)."""
    feature_id: str
    model: str
    """``backend/model`` as priced, or ``NO_MODEL``."""
    first: bool
    """True on exactly one row per committed turn (counts requests)."""
    input_tokens: int
    output_tokens: int
    cost_micro_units: int
    currency_code: str
    price_version: str
