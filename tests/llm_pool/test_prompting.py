"""Prompt layout for model backends: the retrieved sources sit in one fixed block after the
context block, byte-identical for identical sources, in raw text and chat messages alike."""

from __future__ import annotations

from llm_pool.generation import AnswerPlan, GenerationRequest, Prompt, Source
from llm_pool.prompting import chat_messages, render_text

SOURCES = (
    Source(1, "acme-x#chargers", "Returns — Chargers", "2026.3", "SKU-9942-B: 14 days."),
    Source(2, "acme-x#tiers", "Returns — Tiers", "2026.3", "Gold members get 15 extra days."),
)


def _request(sources: tuple[Source, ...] = SOURCES) -> GenerationRequest:
    return GenerationRequest(
        use_case="policy",
        prompt=Prompt(
            instructions="Answer only from the numbered sources.",
            context_block="[CONTEXT v1]\nTier: Gold\n[/CONTEXT]",
            message="can I return SKU-9942-B?",
            sources=sources,
        ),
        plan=AnswerPlan(template="policy.answer", facts={"tier": "gold"}),
    )


def test_sources_follow_the_context_block_in_a_fixed_layout() -> None:
    text = render_text(_request(), "plain")
    block = (
        "[SOURCES v1]\n"
        "[1] acme-x#chargers | Returns — Chargers | version 2026.3\nSKU-9942-B: 14 days.\n"
        "[2] acme-x#tiers | Returns — Tiers | version 2026.3\nGold members get 15 extra days.\n"
        "[/SOURCES]"
    )
    assert block in text
    assert text.index("[/CONTEXT]") < text.index("[SOURCES v1]") < text.index("Facts: ")
    assert text.index("[/SOURCES]") < text.index("customer: can I return SKU-9942-B?")
    assert render_text(_request(), "plain") == text  # same sources, same bytes


def test_chat_messages_carry_the_same_block_in_the_system_message() -> None:
    system = chat_messages(_request())[0]
    assert system["role"] == "system"
    assert "[1] acme-x#chargers | Returns — Chargers" in system["content"]
    assert "[SOURCES v1]" not in chat_messages(_request(()))[0]["content"]
    assert "[SOURCES v1]" not in render_text(_request(()), "llama3")
