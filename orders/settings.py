"""Settings of orders, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.settings import ServiceSettings, SettingsError, env_str

NAME = "orders"


@dataclass(frozen=True, slots=True)
class OrdersSettings:
    """What orders reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    data_dir: Path
    """Writable state (``WAYBILL_DATA_DIR``); the store is ``orders.sqlite3`` in it."""

    @property
    def store_path(self) -> Path:
        """The SQLite file of the store."""
        return self.data_dir / "orders.sqlite3"

    @classmethod
    def from_env(cls) -> OrdersSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        raw = env_str("WAYBILL_DATA_DIR", ".waybill/data")
        data_dir = Path(raw)
        if data_dir.exists() and not data_dir.is_dir():
            raise SettingsError(f"WAYBILL_DATA_DIR={raw!r} is not a directory")
        return cls(
            service=ServiceSettings.from_env(NAME),
            data_dir=data_dir,
        )
