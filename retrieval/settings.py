"""Settings of retrieval, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import ServiceSettings

NAME = "retrieval"


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    """What retrieval reads at start (its options arrive with it)."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""

    @classmethod
    def from_env(cls) -> RetrievalSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(service=ServiceSettings.from_env(NAME))
