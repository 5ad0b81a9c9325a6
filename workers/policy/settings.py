"""Settings of the policy worker, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import ServiceSettings

NAME = "policy"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What the policy worker reads at start (its options arrive with it)."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""

    @classmethod
    def from_env(cls) -> PolicySettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(service=ServiceSettings.from_env(NAME))
