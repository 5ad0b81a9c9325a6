"""Settings of the ledger, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import ServiceSettings

NAME = "ledger"


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """What the ledger reads at start (its options arrive with it)."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""

    @classmethod
    def from_env(cls) -> LedgerSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(service=ServiceSettings.from_env(NAME))
