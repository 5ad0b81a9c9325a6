from llm_pool.composer import Composer, count_tokens
from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
)
from llm_pool.pool import LLMPool
from workers.tracking.templates import TEMPLATES


def _request(template: str, **facts: object) -> GenerationRequest:
    return GenerationRequest(
        use_case="tracking",
        prompt=Prompt(instructions="be brief", context_block="[CONTEXT v1]", message="where?"),
        plan=AnswerPlan(template, facts),
    )


async def test_deltas_assemble_to_the_rendered_template_with_usage() -> None:
    pool = LLMPool([Composer(TEMPLATES)], {"tracking": ["composer"]})
    request = _request("tracking.not_found", ref="WB0000000000")
    events = [e async for e in pool.stream(request)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == TEMPLATES["tracking.not_found"]({"ref": "WB0000000000"})
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    final = events[-1]
    assert isinstance(final, Finished)
    assert final.output_tokens == count_tokens(text)
    assert final.input_tokens == count_tokens(request.prompt.render())
    assert final.finish_reason == "stop"


async def test_unknown_template_fails_explicitly() -> None:
    events = [e async for e in Composer({}).stream(_request("nope"))]
    assert len(events) == 1
    assert isinstance(events[0], StreamFailed)
    assert events[0].reason == "UNKNOWN_TEMPLATE"


async def test_pool_without_backend_fails_explicitly() -> None:
    events = [e async for e in LLMPool([]).stream(_request("tracking.no_orders"))]
    assert isinstance(events[0], StreamFailed)
    assert events[0].reason == "NO_BACKEND"
