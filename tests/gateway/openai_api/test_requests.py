"""The model API's request checks: every refusal names the parameter and the rule."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.openai_api.catalogue import Catalogue
from gateway.openai_api.requests import chat_request, embedding_request
from llm_pool import config, pricing
from runtime.errors import InvalidArgument, NotFound

HELLO = [{"role": "user", "content": "hello"}]


def parse(**body: Any) -> Any:
    return chat_request(body, default_max_tokens=256, max_tokens_cap=4096)


def test_a_plain_request_takes_the_defaults() -> None:
    checked = parse(model="m", messages=HELLO)
    assert checked.max_tokens == 256
    assert checked.temperature == 1.0
    assert not checked.stream
    assert checked.last_user_text == "hello"
    assert parse(model="m", messages=HELLO, max_completion_tokens=9).max_tokens == 9


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        ({"model": "m", "messages": HELLO, "temperature": 2.5}, "temperature"),
        ({"model": "m", "messages": HELLO, "temperature": True}, "temperature"),
        ({"model": "m", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": HELLO, "max_tokens": 5000}, "max_tokens"),
        ({"model": "m", "messages": HELLO, "n": 2}, "n"),
        ({"model": "m", "messages": HELLO, "stream": "yes"}, "stream"),
        (
            {"model": "m", "messages": HELLO, "stream_options": {"include_usage": True}},
            "stream_options",
        ),
        ({"model": "m", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "m", "messages": HELLO, "tools": [{"type": "code"}]}, "tools[0].type"),
        ({"model": "m", "messages": HELLO, "tool_choice": "always"}, "tool_choice"),
        (
            {"model": "m", "messages": HELLO, "tool_choice": {"function": {"name": "f"}}},
            "tool_choice",
        ),
        (
            {"model": "m", "messages": HELLO, "response_format": {"type": "xml"}},
            "response_format.type",
        ),
    ],
)
def test_a_bad_parameter_is_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse(**body)
    assert refused.value.metadata["param"] == param
    assert refused.value.reason == "INVALID_REQUEST_BODY"


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        chat_request([1, 2], default_max_tokens=1, max_tokens_cap=1)
    assert refused.value.metadata["param"] == "body"


def test_embedding_inputs_are_bounded() -> None:
    assert embedding_request({"model": "e", "input": "x"}).inputs == ("x",)
    for bad in ([], [""], [1, 2], ["x"] * 257, "x" * 8001):
        with pytest.raises(InvalidArgument) as refused:
            embedding_request({"model": "e", "input": bad})
        assert refused.value.metadata["param"] == "input"
    with pytest.raises(InvalidArgument):
        embedding_request({"model": "e", "input": "x", "encoding_format": "int8"})


def test_the_catalogue_chains_a_model_then_the_direct_fallbacks() -> None:
    env = {
        "WAYBILL_LLM_OPENAI_URL": "http://127.0.0.1:9/v1",
        "WAYBILL_LLM_TRITON_LARGE_URL": "127.0.0.1:9",
        "WAYBILL_LLM_CHAIN_DIRECT": "openai",
    }
    catalogue = Catalogue(config.load(env), pricing.load())
    assert set(catalogue.models) == {"gpt-4o-mini", "llama-3.3-70b-instruct"}
    assert catalogue.model("gpt-4o-mini").chain == ("openai",)  # never the composer
    large = catalogue.model("llama-3.3-70b-instruct")
    assert large.chain == ("triton-large", "openai")
    # The reservation covers the dearest link of the chain: the fallback's gpt-4o-mini
    # (150,000 / 600,000 per 1M tokens), not the 70B's own 120,000 / 360,000.
    worst = catalogue.worst_case(large, input_tokens=1000, output_tokens=1000)
    assert worst.micro_units == (1000 * 150_000 + 1000 * 600_000) // 1_000_000
    with pytest.raises(NotFound) as missing:
        catalogue.model("gpt-9")
    assert missing.value.reason == "MODEL_NOT_FOUND"
