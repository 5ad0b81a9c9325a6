"""Settings of the negotiation worker, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from runtime.settings import ServiceSettings, env_float, env_int
from workers.negotiation.machine import Limits
from workers.peers import peer_address
from workers.shadow import ShadowSettings

NAME = "negotiation"


@dataclass(frozen=True, slots=True)
class NegotiationSettings:
    """What the negotiation worker reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    orders_address: str
    """``host:port`` of orders (``WAYBILL_ORDERS_ADDR``)."""
    limits: Limits
    """What is refunded without a person: ``WAYBILL_NEGOTIATION_FRAUD_ESCALATE_BP`` (a fraud
    score at or above it goes to a person, default 5000) and
    ``WAYBILL_NEGOTIATION_CONFIRM_WINDOW_S`` (how long a proposal may be confirmed, 900),
    ``WAYBILL_NEGOTIATION_REFUNDS_PER_PERIOD`` (refunds in 30 days without a person, 3)."""
    shadow: ShadowSettings | None = None
    """A shadow candidate (``WAYBILL_SHADOW_*``, ``workers.shadow``); None: shadow mode off."""
    readiness_interval_s: float = 5.0
    """Seconds between model readiness probes (``WAYBILL_LLM_READINESS_INTERVAL_S``)."""
    readiness_timeout_s: float = 1.0
    """Most time the first readiness probe may take at start."""

    @classmethod
    def from_env(cls) -> NegotiationSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(
            service=ServiceSettings.from_env(NAME),
            orders_address=peer_address("orders"),
            limits=Limits(
                fraud_escalate_bp=env_int("WAYBILL_NEGOTIATION_FRAUD_ESCALATE_BP", 5000, minimum=0),
                confirm_window=timedelta(
                    seconds=env_float("WAYBILL_NEGOTIATION_CONFIRM_WINDOW_S", 900.0, minimum=10.0)
                ),
                refunds_per_period=env_int("WAYBILL_NEGOTIATION_REFUNDS_PER_PERIOD", 3, minimum=1),
            ),
            shadow=ShadowSettings.from_env(),
            readiness_interval_s=env_float("WAYBILL_LLM_READINESS_INTERVAL_S", 5.0, minimum=0.1),
        )
