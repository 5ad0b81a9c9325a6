"""Settings of orders, from the environment; bad values fail at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from orders.pg_names import SCHEMA_NAME
from runtime.settings import ServiceSettings, SettingsError, env_int, env_str

NAME = "orders"
DEFAULT_PG_SCHEMA = "orders"


@dataclass(frozen=True, slots=True)
class OrdersSettings:
    """What orders reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    data_dir: Path
    """Writable state (``WAYBILL_DATA_DIR``); the store is ``orders.sqlite3`` in it."""
    pg_dsn: str = field(default="", repr=False)
    """PostgreSQL the fleet keeps orders in (``WAYBILL_ORDERS_PG_DSN``; may hold a
    password, so never shown); empty: the embedded SQLite file."""
    pg_schema: str = DEFAULT_PG_SCHEMA
    """Schema of the PostgreSQL tables (``WAYBILL_ORDERS_PG_SCHEMA``)."""
    pg_pool: int = 10
    """Most PostgreSQL connections one replica holds (``WAYBILL_ORDERS_PG_POOL``)."""
    demo_customers: int = 40
    """Customers per tenant in the demo data set (``WAYBILL_ORDERS_DEMO_CUSTOMERS``, 1..5000;
    soaks ask for more)."""

    @property
    def store_path(self) -> Path:
        """The SQLite file of the embedded store."""
        return self.data_dir / "orders.sqlite3"

    @classmethod
    def from_env(cls) -> OrdersSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        raw = env_str("WAYBILL_DATA_DIR", ".waybill/data")
        data_dir = Path(raw)
        if data_dir.exists() and not data_dir.is_dir():
            raise SettingsError(f"WAYBILL_DATA_DIR={raw!r} is not a directory")
        schema = env_str("WAYBILL_ORDERS_PG_SCHEMA", DEFAULT_PG_SCHEMA)
        if not SCHEMA_NAME.match(schema):
            raise SettingsError(
                f"WAYBILL_ORDERS_PG_SCHEMA={schema!r}: use lower-case letters, digits and"
                " underscores (at most 63, not starting with a digit)"
            )
        return cls(
            service=ServiceSettings.from_env(NAME),
            data_dir=data_dir,
            pg_dsn=os.environ.get("WAYBILL_ORDERS_PG_DSN", ""),
            pg_schema=schema,
            pg_pool=env_int("WAYBILL_ORDERS_PG_POOL", 10, minimum=2),
            demo_customers=_demo_customers(),
        )


def _demo_customers() -> int:
    count = env_int("WAYBILL_ORDERS_DEMO_CUSTOMERS", 40, minimum=1)
    if count > 5000:
        raise SettingsError(f"WAYBILL_ORDERS_DEMO_CUSTOMERS={count} is more than 5000")
    return count
