"""Tracking worker settings: read from the environment, bad values fail naming the variable."""

from __future__ import annotations

import pytest

from runtime.settings import SettingsError
from workers.tracking.settings import TrackingSettings


def test_defaults_follow_the_mesh_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYBILL_ORDERS_ADDR", raising=False)
    monkeypatch.delenv("WAYBILL_TRACKING_ADDR", raising=False)
    monkeypatch.delenv("WAYBILL_LLM_READINESS_INTERVAL_S", raising=False)
    settings = TrackingSettings.from_env()
    assert settings.service.name == "tracking"
    assert settings.service.address == "127.0.0.1:50066"
    assert settings.orders_address == "127.0.0.1:50061"
    assert settings.readiness_interval_s == 5.0


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_ORDERS_ADDR", "10.0.0.7:7000")
    monkeypatch.setenv("WAYBILL_LLM_READINESS_INTERVAL_S", "0.5")
    settings = TrackingSettings.from_env()
    assert settings.orders_address == "10.0.0.7:7000"
    assert settings.readiness_interval_s == 0.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WAYBILL_LLM_READINESS_INTERVAL_S", "often"),
        ("WAYBILL_LLM_READINESS_INTERVAL_S", "0.01"),
        ("WAYBILL_TRACKING_ADDR", "no-port"),
        ("WAYBILL_ORDERS_ADDR", "orders:grpc"),
        ("WAYBILL_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        TrackingSettings.from_env()
