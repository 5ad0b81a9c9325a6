"""Settings of the negotiation worker, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import ServiceSettings

NAME = "negotiation"


@dataclass(frozen=True, slots=True)
class NegotiationSettings:
    """What the negotiation worker reads at start (its options arrive with it)."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""

    @classmethod
    def from_env(cls) -> NegotiationSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(service=ServiceSettings.from_env(NAME))
