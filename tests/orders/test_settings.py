"""Orders settings: read from the environment, bad values fail naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from orders.settings import OrdersSettings
from runtime.settings import SettingsError


def test_the_store_lives_in_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAYBILL_DATA_DIR", str(tmp_path))
    settings = OrdersSettings.from_env()
    assert settings.service.name == "orders"
    assert settings.store_path == tmp_path / "orders.sqlite3"


def test_a_data_dir_that_is_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    occupied = tmp_path / "file"
    occupied.write_text("x")
    monkeypatch.setenv("WAYBILL_DATA_DIR", str(occupied))
    with pytest.raises(SettingsError, match="WAYBILL_DATA_DIR"):
        OrdersSettings.from_env()


def test_a_bad_address_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_ORDERS_ADDR", "localhost")
    with pytest.raises(SettingsError, match="WAYBILL_ORDERS_ADDR"):
        OrdersSettings.from_env()


def test_postgres_is_chosen_by_its_dsn_and_a_bad_schema_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WAYBILL_ORDERS_PG_DSN", "postgresql://orders:secret@db:5432/orders")
    monkeypatch.setenv("WAYBILL_ORDERS_PG_POOL", "4")
    settings = OrdersSettings.from_env()
    assert (settings.pg_schema, settings.pg_pool) == ("orders", 4)
    assert "secret" not in repr(settings)  # the DSN may hold a password
    monkeypatch.setenv("WAYBILL_ORDERS_PG_SCHEMA", "Orders; DROP")
    with pytest.raises(SettingsError, match="WAYBILL_ORDERS_PG_SCHEMA"):
        OrdersSettings.from_env()


@pytest.mark.parametrize(
    ("value", "ok"), [("40", True), ("5000", True), ("0", False), ("5001", False)]
)
def test_the_demo_data_size_is_bounded(
    monkeypatch: pytest.MonkeyPatch, value: str, ok: bool
) -> None:
    monkeypatch.setenv("WAYBILL_ORDERS_DEMO_CUSTOMERS", value)
    if ok:
        assert OrdersSettings.from_env().demo_customers == int(value)
        return
    with pytest.raises(SettingsError, match="WAYBILL_ORDERS_DEMO_CUSTOMERS"):
        OrdersSettings.from_env()
