"""The inference configuration, the price table and the retry policy."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from llm_pool import config, pricing
from llm_pool.retry import RetryPolicy


def test_the_default_is_the_composer_alone_until_an_endpoint_is_set() -> None:
    default = config.load({})
    assert default.chain("tracking") == ("composer",)
    assert default.chain("negotiation") == ("composer",)
    assert default.chains["negotiation"] == ("triton-large", "openai", "composer")
    fleet = config.load(
        {
            "WAYBILL_LLM_TRITON_LARGE_URL": "10.0.0.5:8001",
            "WAYBILL_LLM_OPENAI_URL": "http://vllm:8000/v1",
            "WAYBILL_LLM_OPENAI_MODEL": "qwen2.5-7b",
        }
    )
    assert fleet.chain("negotiation") == ("triton-large", "openai", "composer")
    assert fleet.backends["openai"].served_model == "qwen2.5-7b"
    assert fleet.backends["triton-small"].breaker.failure_threshold == 3
    assert fleet.backends["triton-small"].breaker.recovery_s == 60


def test_chain_override_appends_the_composer_and_refuses_it_elsewhere() -> None:
    env = {"WAYBILL_LLM_CHAIN_TRACKING": "openai", "WAYBILL_LLM_OPENAI_URL": "http://x/v1"}
    assert config.load(env).chain("tracking") == ("openai", "composer")
    with pytest.raises(config.ConfigError, match="composer must be the last link"):
        config.load({"WAYBILL_LLM_CHAIN_TRACKING": "composer,openai"})
    with pytest.raises(config.ConfigError, match="unknown backends: nope"):
        config.load({"WAYBILL_LLM_CHAIN_TRACKING": "nope"})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"version": 2}, "version must be 1"),
        ({"backends": {"composer": {"kind": "composer"}, "x": {"kind": "gpu"}}}, "kind must be"),
        ({"retry": {"attempts": 5}}, "attempts must be 1..3"),
        ({"backends": {"x": {"kind": "triton"}}}, "must define 'composer'"),
    ],
)
def test_bad_configuration_fails_with_a_precise_message(
    tmp_path: Path, patch: dict[str, object], message: str
) -> None:
    raw = json.loads(config.DEFAULT_FILE.read_text())
    raw.update(patch)
    raw["chains"] = {}
    path = tmp_path / "inference.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(config.ConfigError, match=message):
        config.load({"WAYBILL_LLM_CONFIG": str(path)})


def test_prices_are_integer_micro_units_rounded_up_with_their_version() -> None:
    table = pricing.load()
    charge = table.charge(
        "openai", "gpt-4o-mini", input_tokens=1_000, output_tokens=333
    )  # 1000 * 150000 + 333 * 600000 = 349.8e6 -> 350 micros after ceiling
    assert charge is not None
    assert (charge.currency_code, charge.micro_units) == ("USD", 350)
    assert charge.price_version == table.version
    assert table.charge("composer", "composer-v1", input_tokens=9, output_tokens=9) is not None
    assert table.charge("openai", "unpriced-model", input_tokens=1, output_tokens=1) is None


def test_price_table_is_validated() -> None:
    with pytest.raises(pricing.PriceError, match="non-negative integers"):
        pricing.parse(
            {"version": "v", "currency_code": "USD", "prices": {"a/b": {"input": 0.5, "output": 1}}}
        )


def test_backoff_grows_with_jitter_and_respects_attempts_and_deadline() -> None:
    policy = RetryPolicy(attempts=3, base_s=0.1, multiplier=2, max_s=1.0, jitter=0.5)
    rng = random.Random(7)
    first = [policy.delay_s(1, rng) for _ in range(200)]
    second = [policy.delay_s(2, rng) for _ in range(200)]
    assert min(first) >= 0.05
    assert max(first) <= 0.15
    assert min(second) >= 0.1
    assert max(second) <= 0.3
    assert len({round(d, 6) for d in first}) > 100  # jittered, not fixed
    assert policy.should_retry(attempt=1, delay_s=0.1, remaining_s=None, min_attempt_s=0.05)
    assert not policy.should_retry(attempt=3, delay_s=0.1, remaining_s=None, min_attempt_s=0.05)
    assert not policy.should_retry(attempt=1, delay_s=0.1, remaining_s=0.12, min_attempt_s=0.05)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=4)


def test_one_price_file_for_the_whole_mesh_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = tmp_path / "prices.json"
    table.write_text(
        json.dumps(
            {
                "version": "test-1",
                "currency_code": "EUR",
                "prices": {"composer/composer-v1": {"input": 0, "output": 7}},
            }
        )
    )
    monkeypatch.setenv(pricing.PRICES_ENV, str(table))
    loaded = pricing.load()
    assert (loaded.version, loaded.currency_code) == ("test-1", "EUR")
    monkeypatch.delenv(pricing.PRICES_ENV)
    assert pricing.load().version != "test-1"
