"""Edge settings: environment parsing, and demo credentials only on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.edge.demo import DemoCredentials
from gateway.edge.settings import DEMO_CREDENTIALS_ENV, EdgeSettings, is_loopback
from runtime import credentials
from runtime.settings import SettingsError
from tests.support.keys import clients_file


def test_defaults_from_the_mesh_table(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WAYBILL_EDGE_ADDR", "WAYBILL_GATEWAY_ADDR", DEMO_CREDENTIALS_ENV):
        monkeypatch.delenv(name, raising=False)
    settings = EdgeSettings.from_env()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.gateway == "127.0.0.1:50060"
    assert settings.demo_credentials is None
    assert (settings.default_timeout_s, settings.max_timeout_s) == (30.0, 120.0)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAYBILL_EDGE_ADDR", "[::1]:9000")
    monkeypatch.setenv("WAYBILL_GATEWAY_ADDR", "10.0.0.5:50060")
    monkeypatch.setenv("WAYBILL_EDGE_MAX_TIMEOUT_S", "60")
    monkeypatch.setenv(DEMO_CREDENTIALS_ENV, str(tmp_path / "c.json"))
    settings = EdgeSettings.from_env()
    assert (settings.host, settings.port, settings.address) == ("::1", 9000, "[::1]:9000")
    assert settings.gateway == "10.0.0.5:50060"
    assert settings.max_timeout_s == 60.0
    assert settings.demo_credentials == tmp_path / "c.json"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WAYBILL_EDGE_ADDR", "nowhere"),
        ("WAYBILL_GATEWAY_ADDR", "host:port"),
        ("WAYBILL_EDGE_MAX_BODY_BYTES", "10"),
        ("WAYBILL_EDGE_DEFAULT_TIMEOUT_S", "500"),
        ("WAYBILL_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError):
        EdgeSettings.from_env()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "edge.example"])
def test_demo_credentials_are_refused_off_loopback(host: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="loopback"):
        EdgeSettings(host=host, port=8080, gateway="g:1", demo_credentials=tmp_path / "c.json")
    EdgeSettings(host=host, port=8080, gateway="g:1")  # fine without them


def test_loopback_names() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.1", "example.com"))


def test_demo_credentials_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    clients_file(path, ("acme-retail", "globex-home"))
    demo = DemoCredentials.load(path)
    assert demo.tenants == ["acme-retail", "globex-home"]
    assert demo.key_for(None) == credentials.key_for(path, "acme-retail")
    assert demo.key_for("globex-home") == credentials.key_for(path, "globex-home")
    with pytest.raises(SettingsError, match="does not exist"):
        DemoCredentials.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SettingsError, match="unreadable"):
        DemoCredentials.load(tmp_path / "bad.json")


def test_the_demo_signing_key_needs_issuer_and_audience_and_must_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gateway import demo_tokens
    from gateway.edge.server import demo_signer
    from gateway.edge.settings import DEMO_SIGNING_KEY_ENV

    monkeypatch.setenv("WAYBILL_EDGE_ADDR", "127.0.0.1:9000")
    files = demo_tokens.ensure_key_pair(tmp_path)
    monkeypatch.setenv(DEMO_SIGNING_KEY_ENV, str(files.private_key))
    monkeypatch.delenv("WAYBILL_JWT_ISSUER", raising=False)
    with pytest.raises(SettingsError, match="WAYBILL_JWT_ISSUER"):
        EdgeSettings.from_env()
    monkeypatch.setenv("WAYBILL_JWT_ISSUER", demo_tokens.DEMO_ISSUER)
    monkeypatch.setenv("WAYBILL_JWT_AUDIENCE", demo_tokens.DEMO_AUDIENCE)
    settings = EdgeSettings.from_env()
    assert settings.demo_signing_key == files.private_key
    signer = demo_signer(settings)
    assert signer is not None
    assert signer.issue(tenant_id="acme-retail", user_id="acme-0001").token.count(".") == 2
    (tmp_path / "bad.pem").write_text("not a key")
    monkeypatch.setenv(DEMO_SIGNING_KEY_ENV, str(tmp_path / "bad.pem"))
    with pytest.raises(SettingsError, match="demo token key"):
        demo_signer(EdgeSettings.from_env())
