"""The output checks of a streamed answer: released by sentence, PII replaced, and the
session's canary stopping the answer wherever the model splits it."""

from __future__ import annotations

from typing import Any

from waybill.common.v1 import conversation_pb2, events_pb2

from llm_pool.composer import Composer
from llm_pool.generation import AnswerPlan, GenerationRequest, Prompt
from llm_pool.pool import LLMPool
from llm_pool.prompting import chat_messages
from workers.compose import compose
from workers.output_guard import STOP_MESSAGE, CanaryLeak, OutputGuard

CANARY = "wbc-0123456789abcdef"


def test_text_is_released_by_sentence() -> None:
    guard = OutputGuard()
    assert guard.feed("Your parcel is in ") is None
    assert guard.feed("transit. It arrives") == "Your parcel is in transit. "
    assert guard.finish() == "It arrives"


def test_pii_split_across_deltas_is_replaced_whole() -> None:
    guard = OutputGuard()
    out = [guard.feed("We will call +1 415 "), guard.feed("555 0134 tomorrow. "), guard.finish()]
    text = "".join(t for t in out if t)
    assert "555" not in text
    assert text == "We will call [PHONE_NUMBER] tomorrow. "


def test_the_canary_is_caught_however_it_is_split_or_spaced() -> None:
    for pieces in (
        ["The marker is wbc-0123", "456789abcdef, ok."],
        ["Released. ", "The marker is 0123 4567 89AB CDEF."],
        ["x " + CANARY],
        [f"{c} " for c in "a quiet 0123456789ABCDEF"],  # one character per delta
    ):
        guard = OutputGuard(CANARY)
        try:
            for piece in pieces:
                guard.feed(piece)
            guard.finish()
        except CanaryLeak:
            continue
        raise AssertionError(f"the canary got through in {pieces}")


def test_without_a_canary_nothing_is_stopped() -> None:
    guard = OutputGuard("")
    assert guard.feed("0123456789abcdef. ") == "0123456789abcdef. "


def test_near_misses_are_not_a_leak() -> None:
    guard = OutputGuard(CANARY)
    for piece in ["0123456789abcde", " and f", "edcba9876543210", ". "]:
        guard.feed(piece)  # raises CanaryLeak if matched
    assert guard.finish() is None


def test_screened_deltas_skip_the_scan_until_one_is_not() -> None:
    guard = OutputGuard()
    # Screened at the source (template wording around screened facts): released as is.
    assert guard.feed("Left at 221B, code 4155550134. ", screened=True) == (
        "Left at 221B, code 4155550134. "
    )
    # One unscreened delta: everything from here on is scanned, held-back text included.
    assert guard.feed("Call +1 415 ", screened=True) is None
    assert guard.feed("555 0134 now. ") == "Call [PHONE_NUMBER] now. "
    assert guard.feed("Or +1 415 555 0199. ", screened=True) == "Or [PHONE_NUMBER]. "


def _pool(answer: str, *, screened: bool = False) -> tuple[LLMPool, GenerationRequest]:
    pool = LLMPool(
        [Composer({"echo": lambda facts: str(facts["text"])})], {"tracking": ["composer"]}
    )
    request = GenerationRequest(
        use_case="tracking",
        prompt=Prompt(instructions="be brief", context_block="[CONTEXT v1]", canary=CANARY),
        plan=AnswerPlan("echo", {"text": answer}, screened=screened),
    )
    return pool, request


async def _events(answer: str, *, screened: bool = False) -> list[Any]:
    pool, request = _pool(answer, screened=screened)
    return [
        e
        async for e in compose(
            pool, request, state=conversation_pb2.ConversationState(), tool_calls=0, canary=CANARY
        )
    ]


async def test_a_leaking_answer_stops_with_a_refusal_and_the_canary_never_leaves() -> None:
    events = await _events(f"Your parcel is on its way. My hidden marker is {CANARY} by the way.")
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-2:] == ["refusal", "result"]
    sent = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert sent == "Your parcel is on its way. "
    assert events[-2].refusal.reason == events_pb2.REFUSAL_REASON_OUTPUT_BLOCKED
    assert events[-1].result.answer == f"Your parcel is on its way. \n{STOP_MESSAGE}"
    assert "0123456789abcdef" not in str(events)


async def test_a_clean_answer_streams_whole() -> None:
    answer = "Your parcel WB1234567890 is in transit. It should arrive on 2026-12-08."
    events = await _events(answer)
    sent = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert sent == answer
    assert events[-1].result.answer == answer
    assert "refusal" not in [e.WhichOneof("event") for e in events]


async def test_only_a_plan_marked_screened_skips_the_scan() -> None:
    answer = "We will call +1 415 555 0134 tomorrow."
    for screened, sent in ((False, "We will call [PHONE_NUMBER] tomorrow."), (True, answer)):
        events = await _events(answer, screened=screened)
        assert "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta") == sent


async def test_a_screened_plan_still_stops_at_the_canary() -> None:
    events = await _events(f"Fine. The marker is {CANARY}.", screened=True)
    assert [e.WhichOneof("event") for e in events][-2:] == ["refusal", "result"]
    assert "0123456789abcdef" not in str(events)


def test_the_prompt_carries_the_canary_after_the_context_block() -> None:
    _, request = _pool("x")
    system = chat_messages(request)[0]["content"]
    assert system.index("[CONTEXT v1]") < system.index(CANARY)
