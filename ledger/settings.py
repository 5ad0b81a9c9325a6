"""Settings of the ledger, from the environment; bad values fail at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from llm_pool import pricing
from orders.pg_names import SCHEMA_NAME
from runtime import paths
from runtime.settings import ServiceSettings, SettingsError, env_float, env_int, env_str

NAME = "ledger"
DIR_ENV = "WAYBILL_LEDGER_DIR"
DEFAULT_BUDGET_MICROS = 100_000_000
"""USD 100 a month per team unless set (``WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS``)."""
DEFAULT_PG_SCHEMA = "ledger"


def default_dir(env: dict[str, str] | None = None) -> Path:
    """``$WAYBILL_LEDGER_DIR``, else ``ledger`` in ``$WAYBILL_DATA_DIR`` (default
    ``.waybill/data``): the launcher's run directory in the embedded mode."""
    source = os.environ if env is None else env
    if source.get(DIR_ENV):
        return Path(source[DIR_ENV])
    data = source.get("WAYBILL_DATA_DIR") or paths.repo_root() / ".waybill" / "data"
    return Path(data) / "ledger"


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """What the ledger reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    directory: Path = Path(".waybill/data/ledger")
    """Where the embedded store keeps its journal (``WAYBILL_LEDGER_DIR``)."""
    prices: pricing.PriceTable = field(default_factory=pricing.load)
    """The price table commits are priced with: the versioned ``llm_pool/prices.json`` the
    LLM pool prices generations with (the pool has no override, so neither has the ledger:
    both always agree); its currency is the budgets' currency."""
    default_budget_micros: int = DEFAULT_BUDGET_MICROS
    """Monthly limit of a team with no budget set (``WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS``).
    0 is a real limit (only zero-cost turns pass), never "unlimited"."""
    reservation_ttl_s: float = 300.0
    """How long an uncommitted reservation holds its estimate
    (``WAYBILL_LEDGER_RESERVATION_TTL_S``)."""
    sweep_interval_s: float = 5.0
    """How often expired reservations are released (``WAYBILL_LEDGER_SWEEP_S``)."""
    postgres_url: str = field(default="", repr=False)
    """PostgreSQL of the fleet (``WAYBILL_LEDGER_POSTGRES_URL``; may hold a password, so
    never shown); empty: the embedded store."""
    pg_schema: str = DEFAULT_PG_SCHEMA
    """Schema of the PostgreSQL tables (``WAYBILL_LEDGER_PG_SCHEMA``)."""
    pg_pool: int = 10
    """Most PostgreSQL connections one replica holds (``WAYBILL_LEDGER_PG_POOL``)."""

    @classmethod
    def from_env(cls) -> LedgerSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        directory = default_dir()
        if directory.exists() and not directory.is_dir():
            raise SettingsError(f"{DIR_ENV}={str(directory)!r} is not a directory")
        schema = env_str("WAYBILL_LEDGER_PG_SCHEMA", DEFAULT_PG_SCHEMA)
        if not SCHEMA_NAME.match(schema):
            raise SettingsError(
                f"WAYBILL_LEDGER_PG_SCHEMA={schema!r}: use lower-case letters, digits and"
                " underscores (at most 63, not starting with a digit)"
            )
        url = os.environ.get("WAYBILL_LEDGER_POSTGRES_URL", "")
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise SettingsError("WAYBILL_LEDGER_POSTGRES_URL is not a postgresql:// URL")
        ttl = env_float("WAYBILL_LEDGER_RESERVATION_TTL_S", 300.0)
        if ttl < 1:
            raise SettingsError(f"WAYBILL_LEDGER_RESERVATION_TTL_S={ttl} is below 1 second")
        sweep = env_float("WAYBILL_LEDGER_SWEEP_S", 5.0)
        if sweep < 0.05:
            raise SettingsError(f"WAYBILL_LEDGER_SWEEP_S={sweep} is below 0.05 seconds")
        return cls(
            service=ServiceSettings.from_env(NAME),
            directory=directory,
            prices=_prices(),
            default_budget_micros=env_int(
                "WAYBILL_LEDGER_DEFAULT_BUDGET_MICROS", DEFAULT_BUDGET_MICROS, minimum=0
            ),
            reservation_ttl_s=ttl,
            sweep_interval_s=sweep,
            postgres_url=url,
            pg_schema=schema,
            pg_pool=env_int("WAYBILL_LEDGER_PG_POOL", 10, minimum=2),
        )


def _prices() -> pricing.PriceTable:
    try:
        return pricing.load()
    except pricing.PriceError as exc:
        raise SettingsError(f"the price table: {exc}") from None
