"""The policy worker's servicer: proto <-> the query, the tools and the answer plan.

At most three tool calls a turn: the customer's order (when the question names
one of their products), the return window (when it asks how long a return may
take and the product is known) and the knowledge-base search. The answer is
drawn only from what those returned; when nothing relevant came back, it says
so and offers a person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from waybill.common.v1 import conversation_pb2, events_pb2
from waybill.worker.v1 import tools_pb2
from waybill.worker.v1 import worker_service_pb2 as pb
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool.generation import GenerationRequest, Prompt, Source
from llm_pool.pool import LLMPool
from runtime.errors import DomainError, FailedPrecondition
from workers import turn_errors
from workers.compose import compose, history
from workers.policy.answer import (
    Evidence,
    Gate,
    Passage,
    Window,
    answer_plan,
    not_found_plan,
    relevant,
    select,
)
from workers.policy.clients import OrdersClient, RetrievalClient
from workers.policy.query import PolicyQuery, Product, order_to_read, product_in, rewrite
from workers.tools import ToolLog

MAX_TOOL_CALLS = 3
INSTRUCTIONS = (
    "You are Waybill's policy assistant. Answer only from the numbered sources, quoting "
    "them and citing each one you use as [n]. If the sources do not answer the question, "
    "say so and offer to connect the customer with a person. Never guess."
)
_NOT_FOUND = grpc.StatusCode.NOT_FOUND


def citation(passage: Passage) -> events_pb2.Citation:
    """The citation event of a chunk."""
    return events_pb2.Citation(
        chunk_id=passage.chunk_id,
        doc_id=passage.doc_id,
        title=passage.title,
        section=passage.section,
        policy_version=passage.policy_version,
        source_doc=passage.source_doc,
    )


class PolicyServicer(pb_grpc.WorkerServiceServicer):
    """Grounded, cited policy answers."""

    def __init__(
        self,
        retrieval: RetrievalClient,
        orders: OrdersClient,
        pool: LLMPool,
        *,
        gate: Gate | None = None,
    ) -> None:
        self._retrieval = retrieval
        self._orders = orders
        self._pool = pool
        self._gate = gate or Gate()

    async def RunTurn(
        self, request: pb.RunTurnRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunTurnResponse]:
        if request.WhichOneof("input") != "message":
            raise FailedPrecondition(
                "the policy worker answers messages, not decisions",
                reason="DECISION_NOT_SUPPORTED",
            )
        tools = ToolLog(max_calls=MAX_TOOL_CALLS)
        try:
            query, window, passages = await self._consult(request, tools)
        except DomainError as exc:
            for call in tools.calls:
                yield pb.RunTurnResponse(tool_call=call)
            yield pb.RunTurnResponse(error=turn_errors.error_event(exc))
            raise
        for call in tools.calls:
            yield pb.RunTurnResponse(tool_call=call)
        if window is None and not relevant(passages, query, self._gate):
            evidence = Evidence(quotes=())
            plan = not_found_plan(query)
        else:
            evidence = select(passages, query, window=window)
            plan = answer_plan(evidence, query)
        for passage in evidence.cited:
            yield pb.RunTurnResponse(citation=citation(passage))
        state = conversation_pb2.ConversationState()
        state.CopyFrom(request.state)
        del state.policy.cited_chunk_ids[:]
        state.policy.cited_chunk_ids.extend(p.chunk_id for p in evidence.cited)
        if query.product is not None and query.product.order_id:
            state.focus_order_id = query.product.order_id
        generation = GenerationRequest(
            use_case="policy",
            prompt=Prompt(
                instructions=INSTRUCTIONS,
                context_block=request.context.block,
                canary=request.canary,
                history=history(request.state.turns),
                message=request.message,
                sources=tuple(
                    Source(
                        marker=i,
                        chunk_id=p.chunk_id,
                        heading=f"{p.title} — {p.section}",
                        policy_version=p.policy_version,
                        text=p.text,
                    )
                    for i, p in enumerate(evidence.cited, start=1)
                ),
            ),
            plan=plan,
            max_tokens=400,
        )
        async for response in compose(
            self._pool,
            generation,
            state=state,
            tool_calls=len(tools.calls),
            canary=request.canary,
        ):
            yield response

    async def _consult(
        self, request: pb.RunTurnRequest, tools: ToolLog
    ) -> tuple[PolicyQuery, Window | None, list[Passage]]:
        """The tool calls of one turn."""
        tenant, user = request.tenant_id, request.user_id
        product: Product | None = None
        order_id = order_to_read(request.message, request.state, request.context.active_orders)
        if order_id:
            try:
                order = await tools.call(
                    "get_order",
                    tools_pb2.GetOrderArgs(order_id=order_id),
                    lambda: self._orders.order(tenant_id=tenant, user_id=user, order_id=order_id),
                )
                product = product_in(request.message, order)
            except DomainError as exc:
                if exc.code is not _NOT_FOUND:
                    raise
        query = rewrite(request.message, request.context, product)
        window: Window | None = None
        if query.wants_window and query.product is not None:
            sku, category = query.product.sku, query.product.category
            try:
                window = await tools.call(
                    "get_return_window",
                    tools_pb2.GetReturnWindowArgs(
                        sku=sku,
                        tier=request.context.tier,
                        region=query.region,
                        product_category=category,
                    ),
                    lambda: self._retrieval.return_window(
                        tenant_id=tenant,
                        sku=sku,
                        tier=request.context.tier,
                        region=query.region,
                        product_category=category,
                    ),
                )
            except DomainError as exc:
                if exc.code is not _NOT_FOUND:
                    raise
        passages = await tools.call(
            "search_policy_kb",
            tools_pb2.SearchPolicyArgs(
                query=query.text[:500],
                region=query.region,
                product_category=query.product_category,
            ),
            lambda: self._retrieval.search(
                tenant_id=tenant,
                query=query.text,
                region=query.region,
                product_category=query.product_category,
            ),
        )
        return query, window, passages
