"""Shadow mode's parts: its settings, the candidate's chain, the comparison, the verdicts of
a candidate that is slow, down or busy (against a server speaking the OpenAI protocol)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from waybill.common.v1 import money_pb2
from waybill.orders.v1 import orders_pb2
from waybill.worker.v1 import tools_pb2

from cli.triton import free_port
from llm_pool import config as llm_config
from llm_pool.composer import Composer
from llm_pool.generation import Prompt
from llm_pool.openai import OpenAIBackend
from llm_pool.pool import LinkOptions, LLMPool
from llm_pool.retry import RetryPolicy
from runtime.settings import SettingsError
from tests.llm_pool import fake_openai
from workers.shadow import Shadow, ShadowSettings, differing_fields
from workers.tool_payloads import TEMPLATES, request_for

REFUND = tools_pb2.InitiateRefundArgs(
    order_id="ORD-20260001",
    amount=money_pb2.Money(currency_code="USD", minor_units=1999),
    reason_code=orders_pb2.REFUND_REASON_DAMAGED_ITEM,
    order_total=money_pb2.Money(currency_code="USD", minor_units=4999),
)


@pytest.fixture(scope="module")
def model() -> Iterator[str]:
    with fake_openai.serving() as (url, _):
        yield url


def _pool(url: str) -> LLMPool:
    return LLMPool(
        [
            OpenAIBackend(
                name="openai", base_url=url, served_model="gpt-4o-mini", api_key=fake_openai.API_KEY
            ),
            Composer(TEMPLATES),
        ],
        {"negotiation": ["composer"], "negotiation_shadow": ["openai", "composer"]},
        options={"openai": LinkOptions(timeout_s=5, min_attempt_s=0.01)},
        retry=RetryPolicy(attempts=1),
    )


def _shadow(pool: LLMPool, path: Path, **settings: Any) -> Shadow:
    options: dict[str, Any] = {
        "chain": ("openai",),
        "instructions": "",
        "label": "cand",
        "log_path": path,
        **settings,
    }
    return Shadow(
        pool,
        ShadowSettings(**options),
        use_case="negotiation",
        candidate_use_case="negotiation_shadow",
    )


def _ask(shadow: Shadow, message: str = "refund please") -> None:
    prompt = Prompt(instructions="production v1", context_block="", message=message)
    shadow.observe(
        "initiate_refund",
        request_for("initiate_refund", REFUND, use_case="negotiation", prompt=prompt),
        REFUND,
    )


def _verdicts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _count(verdict: str, candidate: str = "cand") -> float:
    labels = {
        "use_case": "negotiation",
        "candidate": candidate,
        "tool": "initiate_refund",
        "verdict": verdict,
    }
    return REGISTRY.get_sample_value("waybill_shadow_tool_calls_total", labels) or 0.0


async def test_a_candidate_that_writes_what_production_ran_agrees(
    model: str, tmp_path: Path
) -> None:
    pool = _pool(model)
    shadow = _shadow(pool, tmp_path / "v.jsonl")
    before = _count("agree")
    _ask(shadow)
    await shadow.close()
    (record,) = _verdicts(tmp_path / "v.jsonl")
    assert (record["verdict"], record["backend"], record["fields"]) == ("agree", "openai", [])
    assert _count("agree") == before + 1
    await pool.close()


async def test_a_candidate_prompt_is_what_the_candidate_reads(model: str, tmp_path: Path) -> None:
    pool = _pool(model)
    shadow = _shadow(pool, tmp_path / "v.jsonl", instructions="v2 [[fake:set=reasonCode=2]]")
    _ask(shadow)
    await shadow.close()
    (record,) = _verdicts(tmp_path / "v.jsonl")
    assert record["verdict"] == "differ"
    assert record["fields"] == ["reasonCode"]
    await pool.close()


async def test_a_candidate_that_is_down_or_too_slow_failed(model: str, tmp_path: Path) -> None:
    down = LLMPool(
        [
            OpenAIBackend(
                name="openai",
                base_url=f"http://127.0.0.1:{free_port()}/v1",
                served_model="gpt-4o-mini",
                api_key=fake_openai.API_KEY,
            ),
            Composer(TEMPLATES),
        ],
        {"negotiation_shadow": ["openai", "composer"]},
        options={"openai": LinkOptions(timeout_s=2, min_attempt_s=0.01)},
        retry=RetryPolicy(attempts=1),
    )
    shadow = _shadow(down, tmp_path / "down.jsonl")
    _ask(shadow)
    await shadow.close()
    # Its chain fell back to the composer: that is not the candidate answering.
    assert [v["verdict"] for v in _verdicts(tmp_path / "down.jsonl")] == ["failed"]
    await down.close()

    pool = _pool(model)
    slow = _shadow(pool, tmp_path / "slow.jsonl", timeout_s=0.2)
    _ask(slow, "refund please [[fake:slow=100]]")
    await slow.close()
    assert [v["verdict"] for v in _verdicts(tmp_path / "slow.jsonl")] == ["failed"]
    await pool.close()


async def test_past_the_in_flight_limit_calls_are_skipped_not_queued(
    model: str, tmp_path: Path
) -> None:
    pool = _pool(model)
    shadow = _shadow(pool, tmp_path / "v.jsonl", max_in_flight=1)
    _ask(shadow, "refund please [[fake:slow=20]]")
    _ask(shadow)
    await shadow.close()
    assert sorted(v["verdict"] for v in _verdicts(tmp_path / "v.jsonl")) == ["agree", "skipped"]
    await pool.close()


def test_a_verdict_never_holds_what_the_candidate_wrote(tmp_path: Path) -> None:
    changed = tools_pb2.InitiateRefundArgs()
    changed.CopyFrom(REFUND)
    changed.amount.minor_units = 1
    changed.order_id = "ORD-99999999"
    assert differing_fields(changed, REFUND) == ["amount.minorUnits", "orderId"]
    assert differing_fields(REFUND, REFUND) == []


def test_settings_are_off_unless_a_candidate_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert ShadowSettings.from_env() is None
    prompt = tmp_path / "refunds-v2.txt"
    prompt.write_text("Write the arguments.\n")
    monkeypatch.setenv("WAYBILL_SHADOW_CHAIN", "triton-large, openai")
    monkeypatch.setenv("WAYBILL_SHADOW_PROMPT_FILE", str(prompt))
    found = ShadowSettings.from_env()
    assert found is not None
    assert found.chain == ("triton-large", "openai")
    assert found.instructions == "Write the arguments."
    assert found.label == "triton-large+openai+refunds-v2"
    monkeypatch.setenv("WAYBILL_SHADOW_PROMPT_FILE", str(tmp_path / "missing.txt"))
    with pytest.raises(SettingsError, match="WAYBILL_SHADOW_PROMPT_FILE"):
        ShadowSettings.from_env()
    monkeypatch.setenv("WAYBILL_SHADOW_PROMPT_FILE", "")
    monkeypatch.setenv("WAYBILL_SHADOW_MAX_IN_FLIGHT", "0")
    with pytest.raises(SettingsError, match="WAYBILL_SHADOW_MAX_IN_FLIGHT"):
        ShadowSettings.from_env()


def test_a_candidate_chain_must_name_backends_that_can_serve() -> None:
    config = llm_config.load({"WAYBILL_LLM_OPENAI_URL": "http://127.0.0.1:9/v1"})
    shadow = llm_config.with_chain(config, "negotiation_shadow", ("openai",))
    assert shadow.chain("negotiation_shadow") == ("openai", "composer")
    assert shadow.chain("negotiation") == config.chain("negotiation")
    with pytest.raises(llm_config.ConfigError, match="WAYBILL_LLM_TRITON_LARGE_URL"):
        llm_config.with_chain(config, "negotiation_shadow", ("triton-large",))
    with pytest.raises(llm_config.ConfigError, match="unknown backends: gpt-9"):
        llm_config.with_chain(config, "negotiation_shadow", ("gpt-9",))
