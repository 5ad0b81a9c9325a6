"""Gateway settings: defaults, overrides, and a fast failure on bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import GatewaySettings
from runtime.settings import SettingsError

_VARS = (
    "WAYBILL_TURN_BUDGET_S",
    "WAYBILL_SESSION_TTL_S",
    "WAYBILL_SESSION_TURNS",
    "WAYBILL_REDIS_URL",
    "WAYBILL_REDIS_PREFIX",
    "WAYBILL_HYDRATION_TTL_S",
    "WAYBILL_HYDRATION_ORDERS",
    "WAYBILL_API_KEYS_FILE",
    "WAYBILL_KEYS_REFRESH_S",
    "WAYBILL_JWT_JWKS_FILE",
    "WAYBILL_JWT_ISSUER",
    "WAYBILL_JWT_AUDIENCE",
    "WAYBILL_JWT_LEEWAY_S",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = GatewaySettings.from_env()
    assert settings.turn_budget_s == 30.0
    assert settings.session_ttl_s == 1800.0
    assert settings.session_turns == 10
    assert settings.redis_url == ""
    assert settings.hydration_ttl_s == 5.0
    assert settings.service.name == "gateway"


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_TURN_BUDGET_S", "12.5")
    monkeypatch.setenv("WAYBILL_REDIS_URL", "redis://127.0.0.1:6379/2")
    monkeypatch.setenv("WAYBILL_REDIS_PREFIX", "fleet-a:")
    monkeypatch.setenv("WAYBILL_API_KEYS_FILE", "/tmp/keys.json")
    monkeypatch.setenv("WAYBILL_KEYS_REFRESH_S", "0.5")
    monkeypatch.setenv("WAYBILL_SESSION_TURNS", "4")
    settings = GatewaySettings.from_env()
    assert settings.turn_budget_s == 12.5
    assert settings.redis_url == "redis://127.0.0.1:6379/2"
    assert settings.redis_prefix == "fleet-a:"
    assert settings.api_keys_file == Path("/tmp/keys.json")
    assert settings.keys_refresh_s == 0.5
    assert settings.tokens is None
    assert settings.session_turns == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WAYBILL_TURN_BUDGET_S", "0"),
        ("WAYBILL_TURN_BUDGET_S", "soon"),
        ("WAYBILL_SESSION_TTL_S", "-5"),
        ("WAYBILL_SESSION_TURNS", "0"),
        ("WAYBILL_HYDRATION_TTL_S", "-1"),
        ("WAYBILL_HYDRATION_ORDERS", "51"),
        ("WAYBILL_REDIS_URL", "http://127.0.0.1:6379"),
        ("WAYBILL_REDIS_PREFIX", "has space"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        GatewaySettings.from_env()


def test_a_bad_redis_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_REDIS_URL", "http://user:s3cret@host")
    with pytest.raises(SettingsError) as raised:
        GatewaySettings.from_env()
    assert "s3cret" not in str(raised.value)


def test_bearer_tokens_need_issuer_and_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_JWT_JWKS_FILE", "/etc/jwks.json")
    with pytest.raises(SettingsError, match="WAYBILL_JWT_ISSUER"):
        GatewaySettings.from_env()
    monkeypatch.setenv("WAYBILL_JWT_ISSUER", "https://id.example/")
    monkeypatch.setenv("WAYBILL_JWT_AUDIENCE", "waybill")
    tokens = GatewaySettings.from_env().tokens
    assert tokens is not None
    assert (tokens.jwks_file, tokens.issuer, tokens.audience, tokens.leeway_s) == (
        Path("/etc/jwks.json"),
        "https://id.example/",
        "waybill",
        30.0,
    )
    monkeypatch.setenv("WAYBILL_JWT_LEEWAY_S", "3600")
    with pytest.raises(SettingsError, match="WAYBILL_JWT_LEEWAY_S"):
        GatewaySettings.from_env()
    monkeypatch.delenv("WAYBILL_JWT_JWKS_FILE")
    monkeypatch.delenv("WAYBILL_JWT_LEEWAY_S")
    with pytest.raises(SettingsError, match="WAYBILL_JWT_JWKS_FILE"):
        GatewaySettings.from_env()


def test_the_gateway_refuses_to_start_without_its_key_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gateway.server import authenticator

    monkeypatch.setenv("WAYBILL_API_KEYS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match="does not exist"):
        authenticator(GatewaySettings.from_env())
    (tmp_path / "plain.json").write_text('{"keys": [{"api_key": "wb_x", "tenant_id": "a"}]}')
    monkeypatch.setenv("WAYBILL_API_KEYS_FILE", str(tmp_path / "plain.json"))
    with pytest.raises(SettingsError, match="WAYBILL_API_KEYS_FILE"):
        authenticator(GatewaySettings.from_env())
