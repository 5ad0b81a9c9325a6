"""Answer cache settings: bad values fail at start; the backend follows the Redis URL."""

from __future__ import annotations

import pytest

from gateway.cache.settings import CacheSettings
from router.settings import RouterSettings
from runtime.settings import SettingsError


def test_defaults_cache_policy_answers_for_an_hour_at_cosine_095(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("WAYBILL_CACHE", "WAYBILL_CACHE_POLICY_TTL_S", "WAYBILL_CACHE_POLICY_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    settings = CacheSettings.from_env()
    policy = settings.use_cases["policy"]
    assert (policy.ttl_s, policy.threshold) == (3600.0, 0.95)
    assert settings.backend_kind("") == "memory"
    assert settings.backend_kind("redis://127.0.0.1:6379/0") == "redis"


def test_the_default_embedding_variant_is_the_routers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Then a policy turn's semantic lookup reuses the router's vector (no model run).
    for name in ("WAYBILL_CACHE_QUANTIZED", "WAYBILL_ROUTER_QUANTIZED"):
        monkeypatch.delenv(name, raising=False)
    assert CacheSettings.from_env().quantized == RouterSettings.from_env().quantized


def test_per_use_case_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_CACHE_POLICY_TTL_S", "120")
    monkeypatch.setenv("WAYBILL_CACHE_POLICY_THRESHOLD", "1.01")
    policy = CacheSettings.from_env().use_cases["policy"]
    assert policy.ttl_s == 120.0
    assert not policy.semantic


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WAYBILL_CACHE", "sometimes"),
        ("WAYBILL_CACHE_POLICY_THRESHOLD", "0.2"),
        ("WAYBILL_CACHE_POLICY_THRESHOLD", "2"),
        ("WAYBILL_CACHE_POLICY_THRESHOLD", "high"),
        ("WAYBILL_CACHE_POLICY_TTL_S", "0"),
        ("WAYBILL_CACHE_ENTRIES", "0"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError):
        CacheSettings.from_env()


def test_redis_without_a_url_fails_and_off_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_CACHE", "redis")
    with pytest.raises(SettingsError):
        CacheSettings.from_env().backend_kind("")
    monkeypatch.setenv("WAYBILL_CACHE", "off")
    assert CacheSettings.from_env().backend_kind("redis://127.0.0.1:6379/0") == "off"
