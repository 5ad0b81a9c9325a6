"""Direct model calls, governed as turns are: authenticate -> limit -> screen -> cache ->
reserve -> generate (the LLM pool's fallback chain) -> commit -> audit.

Only service and admin keys call models directly: an end user's token acts as one
customer of the order-support assistant, not as a general model client
(PERMISSION_DENIED). The call's worst case (every prompt byte a token, plus its
``max_tokens``, at the dearest link of its chain) is reserved before the model runs;
what the model reported is committed after it. A stream that breaks or that the caller
abandons is charged for what was streamed (the backend's count, or a word count of what
reached the caller); one that produced nothing releases its reservation.

A deterministic call (temperature 0) is answered from the exact-match cache when the
same tenant asked the very same thing of the same model before (``WAYBILL_CACHE``); a
hit costs nothing and reserves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from waybill.common.v1 import usage_pb2
from waybill.gateway.v1 import gateway_service_pb2 as pb
from waybill.guardrails.v1 import guardrails_service_pb2 as guard

from embeddings import Embedder
from gateway.audit import Auditor, TurnRecord
from gateway.budgets import Budgets, Hold, charge, charge_soon
from gateway.cache.core import AnswerCache, Lookup, Partition
from gateway.clients import GuardrailsClient
from gateway.conversation import INPUTS_BLOCKED, start_turn_clock
from gateway.openai_api.catalogue import Catalogue, Model
from gateway.openai_api.requests import ChatRequest, EmbeddingRequest
from gateway.ratelimit import RateLimiter
from llm_pool.finish import count_generation, cut_short
from llm_pool.generation import (
    AnswerPlan,
    ChatCall,
    Finished,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    whole_calls,
)
from llm_pool.pool import LLMPool
from llm_pool.tokens import WordCounter
from runtime.errors import (
    DeadlineExceeded,
    DomainError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from runtime.principal import Principal

log = logging.getLogger("waybill.gateway.models")

FEATURE = "model-api"
"""The ledger feature direct model calls are charged to."""
CACHE_USE_CASE = "direct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The bundled sentence embedding model (384 dimensions), as ``/v1/models`` lists it."""
GUARD_CHUNK = 4000
"""CheckInput takes at most this many characters; a longer message is checked in parts."""
_WORDS = WordCounter()


@dataclass(frozen=True, slots=True)
class Completed:
    """The last event of a call."""

    model: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    cached: bool = False


CallEvent = TextDelta | ToolCallDelta | Completed


@dataclass(slots=True)
class _Run:
    """One generation's progress: what reached the caller and how it ended."""

    relayed: list[TextDelta | ToolCallDelta] = field(default_factory=list)
    finished: Finished | None = None


@dataclass(frozen=True, slots=True)
class Embedded:
    """The vectors of an embeddings call."""

    model: str
    vectors: np.ndarray
    input_tokens: int


class EmbeddingModel:
    """The bundled embedding model, loaded once (on first use unless given)."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder
        self._loading: asyncio.Lock | None = None

    async def get(self) -> Embedder:
        """The loaded model (UNAVAILABLE when it is not installed)."""
        if self._embedder is None:
            self._loading = self._loading or asyncio.Lock()
            async with self._loading:
                if self._embedder is None:
                    try:
                        self._embedder = await asyncio.to_thread(Embedder.load)
                    except Exception:
                        log.exception("embedding model unavailable")
                        raise Unavailable(
                            "the embedding model is not available", reason="MODEL_UNAVAILABLE"
                        ) from None
        return self._embedder

    id = EMBEDDING_MODEL
    """The model id callers send."""


class ModelCalls:
    """Chat completions and embeddings for service callers."""

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        pool: LLMPool,
        limiter: RateLimiter,
        budgets: Budgets,
        auditor: Auditor,
        guardrails: GuardrailsClient | None,
        cache: AnswerCache | None,
        embeddings: EmbeddingModel,
        turn_budget_s: float = 30.0,
        default_max_tokens: int = 1024,
        max_tokens_cap: int = 16_384,
    ) -> None:
        self.catalogue = catalogue
        self.embeddings = embeddings
        self._pool = pool
        self._limiter = limiter
        self._budgets = budgets
        self._auditor = auditor
        self._guardrails = guardrails
        self._cache = cache if cache is not None and cache.use_case(CACHE_USE_CASE) else None
        self._turn_budget_s = turn_budget_s
        self.default_max_tokens = default_max_tokens
        """Completion tokens of a call that names no limit (what its reservation assumes)."""
        self.max_tokens_cap = max_tokens_cap
        """The largest ``max_tokens`` a call may ask for."""

    async def aclose(self) -> None:
        """Close the pool's connections."""
        await self._pool.close()

    # -- chat completions -----------------------------------------------------------

    async def complete(
        self, principal: Principal, request: ChatRequest, request_id: str
    ) -> AsyncIterator[CallEvent]:
        """Stream one completion: deltas, then ``Completed``; or raise a DomainError
        (before the first delta: nothing was streamed; after it: the stream broke).

        The reservation runs beside the input check and the cache lookup; the commit, the
        token debit, the cache entry and the audit record follow ``Completed`` in the
        background, so the caller never waits for them (a commit that fails leaves the
        reservation to expire, counted in ``waybill_turns_uncharged_total``)."""
        _services_only(principal)
        model = self.catalogue.model(request.model)
        final = pb.Final(request_id=request_id)
        with self._auditor.turn(
            principal, user_id=request.user, session_id="", request_id=request_id
        ) as audit:
            await self._limiter.admit(principal, request.user)
            start_turn_clock(self._turn_budget_s)
            reserving = self._reserve(principal, model, request)
            try:
                call = await self._screened(principal, request, request_id)
                lookup = await self._lookup(principal, model, request, call)
                cached = _decode(lookup.found.payload) if lookup and lookup.found else None
            except BaseException:
                _release_when_held(reserving)
                raise
            if cached is not None:
                _release_when_held(reserving)
                final.cache_hit = True
                for event in cached:
                    yield event
                audit.observe_final(final)
                return
            hold = await reserving if reserving is not None else None
            run = _Run()
            async for delta in self._relay(hold, model, _generation(model, request, call), run):
                yield delta
            end = run.finished
            assert end is not None  # _relay raises unless the model finished
            done = Completed(
                model=model.id,
                finish_reason=end.finish_reason,
                input_tokens=end.input_tokens,
                output_tokens=end.output_tokens,
            )
            count_generation(final.usage, end)
            _background_task(
                self._settle(
                    principal,
                    request.user,
                    hold=hold,
                    final=final,
                    audit=audit,
                    lookup=lookup,
                    relayed=run.relayed,
                    done=done,
                )
            )
            audit.hand_off()  # the settling closes it
            yield done

    def _reserve(
        self, principal: Principal, model: Model, request: ChatRequest
    ) -> asyncio.Task[Hold | None] | None:
        """Start reserving the call's worst case: every byte of what it sends a token (the
        input check's pseudonyms may be longer than what they replace: twice), plus its
        ``max_tokens``, at the dearest link of its chain. None when budgets are off."""
        if not self._budgets.enabled:
            return None
        sent = len(json.dumps(request.call.messages).encode()) + len(json.dumps(request.call.tools))
        estimate = self.catalogue.worst_case(
            model, input_tokens=2 * sent, output_tokens=request.max_tokens
        )
        return asyncio.ensure_future(
            self._budgets.hold(principal, request.user, estimate=estimate, feature=FEATURE)
        )

    async def _relay(
        self, hold: Hold | None, model: Model, generation: GenerationRequest, run: _Run
    ) -> AsyncIterator[TextDelta | ToolCallDelta]:
        """The model's deltas; ``run`` keeps them and the end. A failure before the end is
        settled (what was consumed charged, the rest released) and raised."""
        end: Finished | StreamFailed | None = None
        try:
            async for event in self._pool.stream(generation):
                if isinstance(event, TextDelta | ToolCallDelta):
                    run.relayed.append(event)
                    yield event
                elif isinstance(event, Finished | StreamFailed):
                    end = event
        except BaseException:
            # The caller went away mid-stream: charge what reached it, release the rest.
            _settle_abandoned(hold, model, run.relayed)
            raise
        if not isinstance(end, Finished):
            failed = end or StreamFailed(
                backend="", code="UNAVAILABLE", reason="NO_RESULT", message="no answer"
            )
            _settle_failed(hold, failed)
            raise _call_error(failed)
        run.finished = end

    async def _settle(
        self,
        principal: Principal,
        user_id: str,
        *,
        hold: Hold | None,
        final: pb.Final,
        audit: TurnRecord,
        lookup: Lookup | None,
        relayed: Sequence[TextDelta | ToolCallDelta],
        done: Completed,
    ) -> None:
        """After the answer: commit, debit the tokens, keep the answer, write the record."""
        try:
            final.budget_state = await charge(hold, final.usage)
            with contextlib.suppress(DomainError):  # a limit store that is down: not charged
                await self._limiter.spend(
                    principal, user_id, final.usage.input_tokens + final.usage.output_tokens
                )
            if lookup is not None and self._cache is not None:
                await self._cache.store(lookup, _encode(relayed, done))
            audit.observe_final(final)
        finally:
            audit.close()

    async def _screened(
        self, principal: Principal, request: ChatRequest, request_id: str
    ) -> ChatCall:
        """The call with its last user message checked (and its PII replaced); refused
        with INVALID_ARGUMENT (INPUT_BLOCKED) when the input guardrail blocks it."""
        text = request.last_user_text
        if self._guardrails is None or not text.strip():
            return request.call
        parts = [text[i : i + GUARD_CHUNK] for i in range(0, len(text), GUARD_CHUNK)]
        checks = await asyncio.gather(
            *(
                self._guardrails.check_input(
                    tenant_id=principal.tenant_id, session_id=request_id, text=part
                )
                for part in parts
            )
        )
        if any(c.verdict == guard.VERDICT_BLOCK for c in checks):
            INPUTS_BLOCKED.inc()
            raise InvalidArgument(
                "the input guardrail blocked this message (instructions that try to "
                "override the model's were found)",
                reason="INPUT_BLOCKED",
                metadata={"param": "messages"},
            )
        redacted = "".join(c.redacted_text for c in checks)
        if redacted == text:
            return request.call
        messages = list(request.call.messages)
        last = max(i for i, m in enumerate(messages) if m.get("role") == "user")
        messages[last] = {**messages[last], "content": redacted}
        return ChatCall(
            messages=tuple(messages),
            tools=request.call.tools,
            tool_choice=request.call.tool_choice,
            response_format=request.call.response_format,
        )

    async def _lookup(
        self, principal: Principal, model: Model, request: ChatRequest, call: ChatCall
    ) -> Lookup | None:
        """The cache lookup of a deterministic call; None when the call is not cached."""
        if self._cache is None or request.temperature != 0:
            return None
        key = json.dumps(
            {
                "messages": call.messages,
                "tools": call.tools,
                "tool_choice": call.tool_choice,
                "response_format": call.response_format,
                "max_tokens": request.max_tokens,
                "stop": request.stop,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        partition = Partition(
            tenant=principal.tenant_id, use_case=CACHE_USE_CASE, intent=model.id, version=""
        )
        return await self._cache.lookup(partition, key)

    # -- embeddings -------------------------------------------------------------------

    async def embed(
        self, principal: Principal, request: EmbeddingRequest, request_id: str
    ) -> Embedded:
        """The vectors of the inputs, in order, from the bundled model."""
        _services_only(principal)
        if request.model != self.embeddings.id:
            raise NotFound(
                f"the model {request.model[:64]!r} is not an embedding model served here; "
                "GET /v1/models lists those that are",
                reason="MODEL_NOT_FOUND",
                metadata={"param": "model"},
            )
        final = pb.Final(request_id=request_id)
        with self._auditor.turn(
            principal, user_id=request.user, session_id="", request_id=request_id
        ) as audit:
            await self._limiter.admit(principal, request.user)
            embedder = await self.embeddings.get()
            vectors = await asyncio.to_thread(embedder.embed, list(request.inputs))
            tokens = sum(_WORDS.count(t) for t in request.inputs)
            final.usage.input_tokens = tokens
            final.usage.generations.add(
                backend="local", model=self.embeddings.id, input_tokens=tokens
            )
            await self._limiter.spend(principal, request.user, tokens)
            audit.observe_final(final)
            return Embedded(model=self.embeddings.id, vectors=vectors, input_tokens=tokens)


def _generation(model: Model, request: ChatRequest, call: ChatCall) -> GenerationRequest:
    return GenerationRequest(
        use_case=model.use_case,
        prompt=Prompt(instructions="", context_block=""),
        plan=AnswerPlan(template=""),
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        stop=request.stop,
        chat=call,
    )


def _release_when_held(reserving: asyncio.Task[Hold | None] | None) -> None:
    """Release a reservation the call will not use, once (and if) it was granted."""
    if reserving is None:
        return

    def release(task: asyncio.Task[Hold | None]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        hold = task.result()
        if hold is not None:
            hold.release_soon()

    reserving.add_done_callback(release)


def _services_only(principal: Principal) -> None:
    if principal.end_user:
        raise PermissionDenied(
            "a customer's token cannot call models directly; use a service key",
            reason="SERVICE_KEY_REQUIRED",
        )


def _settle_failed(hold: Hold | None, failed: StreamFailed) -> None:
    """A failed generation: charge what it consumed (a stream broken midway), else release."""
    if hold is None:
        return
    if failed.input_tokens or failed.output_tokens:
        usage = cut_short(
            failed.backend,
            failed.model,
            usage_pb2.FINISH_REASON_ERROR,
            input_tokens=failed.input_tokens,
            output_tokens=failed.output_tokens,
        )
        charge_soon(hold, usage)
    else:
        hold.release_soon()


def _settle_abandoned(
    hold: Hold | None, model: Model, relayed: Sequence[TextDelta | ToolCallDelta]
) -> None:
    """A stream the caller left: charge the words that reached it at the first link's
    model (the one that streamed them, unless it fell back before streaming)."""
    if hold is None:
        return
    text = "".join(e.text if isinstance(e, TextDelta) else e.arguments for e in relayed)
    if not text:
        hold.release_soon()
        return
    kind, served = model.kinds[0]
    usage = cut_short(
        kind, served, usage_pb2.FINISH_REASON_CANCELLED, output_tokens=_WORDS.count(text)
    )
    charge_soon(hold, usage)


_background: set[asyncio.Task[None]] = set()
"""Settlements in flight (held so they are not garbage-collected mid-call)."""


def _background_task(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _call_error(failed: StreamFailed) -> DomainError:
    """The caller's error for a generation that failed (no host or backend internals)."""
    reason = failed.reason or "MODEL_FAILED"
    if failed.code == "RESOURCE_EXHAUSTED":
        return ResourceExhausted(
            "the model provider is rate limiting; retry shortly", reason=reason, retry_after_s=1.0
        )
    if failed.code == "INVALID_ARGUMENT":
        return InvalidArgument(
            "the model refused the request: " + failed.message.partition(": ")[2][:300],
            reason=reason,
        )
    if failed.code == "DEADLINE_EXCEEDED":
        return DeadlineExceeded("the model did not answer in time", reason=reason)
    return Unavailable("no model of the chain could answer; retry later", reason=reason)


def _encode(relayed: Sequence[TextDelta | ToolCallDelta], done: Completed) -> bytes:
    text = "".join(e.text for e in relayed if isinstance(e, TextDelta))
    calls = whole_calls(e for e in relayed if isinstance(e, ToolCallDelta))
    return json.dumps(
        {
            "v": 1,
            "text": text,
            "calls": [
                {"index": c.index, "id": c.call_id, "name": c.name, "arguments": c.arguments}
                for c in calls
            ],
            "finish": done.finish_reason,
            "in": done.input_tokens,
            "out": done.output_tokens,
            "model": done.model,
        }
    ).encode()


def _decode(payload: bytes) -> list[CallEvent] | None:
    try:
        raw = json.loads(payload)
        if raw.get("v") != 1:
            return None
        events: list[CallEvent] = []
        if raw["text"]:
            events.append(TextDelta(raw["text"]))
        for c in raw["calls"]:
            events.append(ToolCallDelta(c["index"], c["id"], c["name"], c["arguments"]))
        events.append(
            Completed(raw["model"], raw["finish"], int(raw["in"]), int(raw["out"]), cached=True)
        )
        return events
    except (ValueError, KeyError, TypeError):
        return None
