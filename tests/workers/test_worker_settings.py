"""Worker settings fail naming a bad variable."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.settings import SettingsError
from workers.negotiation.settings import NegotiationSettings
from workers.policy.settings import PolicySettings


@pytest.mark.parametrize("settings", [PolicySettings, NegotiationSettings])
def test_settings_name_a_bad_variable(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    assert settings.from_env().service.name in {"policy", "negotiation"}
    monkeypatch.setenv("WAYBILL_DRAIN_S", "-1")
    with pytest.raises(SettingsError, match="WAYBILL_DRAIN_S"):
        settings.from_env()


def test_negotiation_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_NEGOTIATION_FRAUD_ESCALATE_BP", "4200")
    monkeypatch.setenv("WAYBILL_NEGOTIATION_CONFIRM_WINDOW_S", "60")
    limits = NegotiationSettings.from_env().limits
    assert limits.fraud_escalate_bp == 4200
    assert limits.confirm_window.total_seconds() == 60
    monkeypatch.setenv("WAYBILL_NEGOTIATION_FRAUD_ESCALATE_BP", "lots")
    with pytest.raises(SettingsError, match="WAYBILL_NEGOTIATION_FRAUD_ESCALATE_BP"):
        NegotiationSettings.from_env()
