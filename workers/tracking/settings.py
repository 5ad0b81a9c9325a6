"""Settings of the tracking worker, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import ServiceSettings, env_float
from workers.peers import peer_address

NAME = "tracking"


@dataclass(frozen=True, slots=True)
class TrackingSettings:
    """What the tracking worker reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    orders_address: str
    """``host:port`` of orders (``WAYBILL_ORDERS_ADDR``)."""
    guardrails_address: str
    """``host:port`` of the guardrails (``WAYBILL_GUARDRAILS_ADDR``), called only when a model
    writes answers (to screen the tool text it reads)."""
    readiness_interval_s: float = 5.0
    """Seconds between model readiness probes (``WAYBILL_LLM_READINESS_INTERVAL_S``)."""
    readiness_timeout_s: float = 1.0
    """Most time the first readiness probe may take at start."""

    @classmethod
    def from_env(cls) -> TrackingSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(
            service=ServiceSettings.from_env(NAME),
            orders_address=peer_address("orders"),
            guardrails_address=peer_address("guardrails"),
            readiness_interval_s=env_float("WAYBILL_LLM_READINESS_INTERVAL_S", 5.0, minimum=0.1),
        )
