"""Settings of the policy worker, from the environment; bad values fail at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.settings import ServiceSettings, env_bool, env_float
from workers.peers import peer_address
from workers.policy.answer import Gate

NAME = "policy"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What the policy worker reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    retrieval_address: str
    """``host:port`` of retrieval (``WAYBILL_RETRIEVAL_ADDR``)."""
    orders_address: str
    """``host:port`` of orders (``WAYBILL_ORDERS_ADDR``)."""
    gate: Gate = field(default_factory=Gate)
    """When retrieval counts as having found something (``WAYBILL_POLICY_MIN_DENSE``,
    ``WAYBILL_POLICY_CODE_MATCH``; defaults fitted by ``waybill eval-retrieval --fit-gate``)."""
    readiness_interval_s: float = 5.0
    """Seconds between model readiness probes (``WAYBILL_LLM_READINESS_INTERVAL_S``)."""
    readiness_timeout_s: float = 1.0
    """Most time the first readiness probe may take at start."""

    @classmethod
    def from_env(cls) -> PolicySettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        default = Gate()
        return cls(
            service=ServiceSettings.from_env(NAME),
            retrieval_address=peer_address("retrieval"),
            orders_address=peer_address("orders"),
            gate=Gate(
                min_dense=env_float("WAYBILL_POLICY_MIN_DENSE", default.min_dense),
                code_match=env_bool("WAYBILL_POLICY_CODE_MATCH", default.code_match),
            ),
            readiness_interval_s=env_float("WAYBILL_LLM_READINESS_INTERVAL_S", 5.0, minimum=0.1),
        )
