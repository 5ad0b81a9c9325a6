"""Settings of guardrails, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import ServiceSettings

NAME = "guardrails"


@dataclass(frozen=True, slots=True)
class GuardrailsSettings:
    """What guardrails reads at start (the classifiers' options arrive with them)."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""

    @classmethod
    def from_env(cls) -> GuardrailsSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(service=ServiceSettings.from_env(NAME))
