import random
from pathlib import Path

import grpc
import pytest

from runtime import mesh
from runtime.deadlines import DeadlinePolicy
from runtime.settings import FaultInjection, ServiceSettings, SettingsError


def test_defaults_come_from_the_mesh_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYBILL_ORDERS_ADDR", raising=False)
    settings = ServiceSettings.from_env("orders")
    assert settings.address == f"127.0.0.1:{mesh.spec('orders').default_port}"


def test_the_environment_reaches_the_deadline_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Milliseconds in the environment, seconds in the policy every client uses."""
    monkeypatch.setenv("WAYBILL_DEADLINE_MARGIN_MS", "7.5")
    monkeypatch.setenv("WAYBILL_DEADLINE_MIN_MS", "3")
    monkeypatch.setenv("WAYBILL_DEFAULT_CALL_TIMEOUT_S", "4")
    monkeypatch.setenv("WAYBILL_ORDERS_METRICS_PORT", "9464")
    monkeypatch.setenv("WAYBILL_ACCESS_LOG", "off")
    monkeypatch.setenv("WAYBILL_FAULT_DELAY_MS", "40")
    monkeypatch.setenv("WAYBILL_FAULT_METHODS", "GetShipment,GetEta")
    settings = ServiceSettings.from_env("orders")
    assert settings.deadline_policy() == DeadlinePolicy(margin_s=0.0075, min_s=0.003, default_s=4.0)
    assert (settings.metrics_port, settings.access_log) == (9464, False)
    assert settings.faults.delay_ms == 40
    assert settings.faults.fires("/waybill.orders.v1.OrdersService/GetEta")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("WAYBILL_ORDERS_ADDR", "nonsense"),
        ("WAYBILL_GRACE_S", "soon"),
        ("WAYBILL_DEADLINE_MARGIN_MS", "-1"),
        ("WAYBILL_LOG_LEVEL", "LOUD"),
        ("WAYBILL_ACCESS_LOG", "maybe"),
        ("WAYBILL_ACCESS_LOG_SAMPLE", "1.5"),
        ("WAYBILL_ACCESS_LOG_SAMPLE", "-0.1"),
        ("WAYBILL_FAULT_STATUS", "SLOW"),
        ("WAYBILL_FAULT_STATUS", "OK"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        ServiceSettings.from_env("orders")


def test_access_log_sampling_is_a_share(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings.from_env("orders").access_log_sample == 1.0
    monkeypatch.setenv("WAYBILL_ACCESS_LOG_SAMPLE", "0.05")
    assert ServiceSettings.from_env("orders").access_log_sample == 0.05


def test_fault_injection_matches_method_names() -> None:
    faults = FaultInjection(delay_ms=250, methods=("GetShipment",))
    assert faults.fires("/waybill.orders.v1.OrdersService/GetShipment")
    assert not faults.fires("/waybill.orders.v1.OrdersService/GetEta")
    assert not FaultInjection(methods=("GetShipment",)).fires(
        "/waybill.orders.v1.OrdersService/GetShipment"
    )  # nothing to inject


def test_an_injected_status_applies_to_its_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_FAULT_STATUS", "resource_exhausted")
    monkeypatch.setenv("WAYBILL_FAULT_RETRY_AFTER_S", "7")
    monkeypatch.setenv("WAYBILL_FAULT_METHODS", "GetShipment")
    faults = ServiceSettings.from_env("orders").faults
    assert faults.fires("/waybill.orders.v1.OrdersService/GetShipment")
    assert faults.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not faults.fires("/waybill.orders.v1.OrdersService/GetEta")
    assert faults.retry_after_s == 7.0
    assert not faults.after
    assert not faults.exit


def test_a_once_fault_fires_for_the_first_call_only(tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    faults = FaultInjection(status="UNAVAILABLE", methods=("CreateRefund",), once_file=str(marker))
    method = "/waybill.orders.v1.OrdersService/CreateRefund"
    assert [faults.fires(method) for _ in range(3)] == [True, False, False]
    # Another process sharing the file (a restart) does not fire again.
    again = FaultInjection(status="UNAVAILABLE", methods=("CreateRefund",), once_file=str(marker))
    assert not again.fires(method)
    marker.unlink()
    assert again.fires(method)


def test_a_fault_rate_picks_a_share_of_the_calls() -> None:
    random.seed(7)
    faults = FaultInjection(status="UNAVAILABLE", methods=("CreateRefund",), rate=0.25)
    fired = sum(faults.fires("/x.S/CreateRefund") for _ in range(4000))
    assert 850 < fired < 1150
    assert not any(
        FaultInjection(status="UNAVAILABLE", methods=("M",), rate=0.0).fires("/x.S/M")
        for _ in range(100)
    )


@pytest.mark.parametrize(
    ("var", "value"), [("WAYBILL_FAULT_RATE", "1.5"), ("WAYBILL_FAULT_AFTER", "maybe")]
)
def test_bad_fault_settings_fail_at_start(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        ServiceSettings.from_env("orders")


def test_start_order_puts_dependencies_first() -> None:
    order = [s.name for s in mesh.start_order()]
    for spec in mesh.SERVICES:
        for dep in spec.depends_on:
            assert order.index(dep) < order.index(spec.name)
    assert order[-1] == "gateway"
    with pytest.raises(KeyError, match="known"):
        mesh.spec("nope")
