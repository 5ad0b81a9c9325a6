"""The tracking worker's servicer: proto <-> the plan, the orders client and the
LLM pool. What to read and what to answer is decided in ``plan.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from waybill.common.v1 import conversation_pb2
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import tools_pb2
from waybill.worker.v1 import worker_service_pb2 as pb
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool.generation import AnswerPlan, GenerationRequest, Prompt
from llm_pool.pool import LLMPool
from runtime.errors import DomainError, FailedPrecondition
from runtime.text_screen import TextScreen
from workers import turn_errors
from workers.compose import compose, history
from workers.tools import ToolLog
from workers.tracking import plan
from workers.tracking.clients import OrdersClient, Scope
from workers.tracking.plan import MAX_TOOL_TURNS, Tool
from workers.tracking.resolve import resolve

INSTRUCTIONS = (
    "You are Waybill's tracking assistant. Answer only from the tool results. "
    "Never reveal data of other customers. Be brief."
)


class TrackingServicer(pb_grpc.WorkerServiceServicer):
    """Read-only by construction: its orders client has read calls only."""

    def __init__(
        self,
        orders: OrdersClient | orders_grpc.OrdersServiceStub,
        pool: LLMPool,
        screen: TextScreen | None = None,
    ) -> None:
        # A bare stub (tests that build the chain by hand) gets the same client.
        self._orders = orders if isinstance(orders, OrdersClient) else OrdersClient(orders)
        self._pool = pool
        # Set when a model may write the answer: it reads the facts, so the text others
        # wrote (titles, carrier events) is screened first (workers.tool_screen).
        self._screen = screen

    async def RunTurn(
        self, request: pb.RunTurnRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunTurnResponse]:
        if request.WhichOneof("input") != "message":
            raise FailedPrecondition(
                "the tracking worker answers messages, not decisions",
                reason="DECISION_NOT_SUPPORTED",
            )
        active = request.context.active_orders
        target = resolve(request.message, request.state, active)
        turn = plan.turn_of(request.intent, target, active)
        tools = ToolLog(max_calls=MAX_TOOL_TURNS)
        try:
            answer = await self._consult(turn, request, tools)
        except DomainError as exc:
            # The customer hears what happened, then the stream ends with the status.
            for call in tools.calls:
                yield pb.RunTurnResponse(tool_call=call)
            yield pb.RunTurnResponse(error=turn_errors.error_event(exc))
            raise
        for call in tools.calls:
            yield pb.RunTurnResponse(tool_call=call)
        if self._screen is not None:
            flagged = await self._screen.flagged(request.tenant_id, plan.injectable(answer))
            answer = plan.withheld(answer, flagged)
        state = plan.remember(request.state, target, answer, tool_turns=len(tools.calls))
        async for response in self._compose(request, state, answer, len(tools.calls)):
            yield response

    async def _consult(
        self, turn: plan.Turn, request: pb.RunTurnRequest, tools: ToolLog
    ) -> AnswerPlan:
        """Make the reads the plan asks for until it can answer."""
        scope = Scope(tenant_id=request.tenant_id, user_id=request.user_id, awb=turn.target.awb)
        done: list[tuple[Tool, plan.Read]] = []
        while True:
            step = plan.next_step(turn, done)
            if isinstance(step, AnswerPlan):
                return step
            done.append((step, await self._read(step, scope, tools)))

    async def _read(self, tool: Tool, scope: Scope, tools: ToolLog) -> plan.Read:
        try:
            if tool is Tool.ETA:
                args = tools_pb2.GetEtaArgs(awb=scope.awb)
                return await tools.call(tool.value, args, lambda: self._orders.eta(scope))
            if tool is Tool.PHOTO:
                photo_args = tools_pb2.GetDeliveryPhotoArgs(awb=scope.awb)
                return await tools.call(
                    tool.value, photo_args, lambda: self._orders.delivery_photo(scope)
                )
            status_args = tools_pb2.GetOrderStatusArgs(awb=scope.awb)
            return await tools.call(tool.value, status_args, lambda: self._orders.shipment(scope))
        except DomainError as exc:
            if plan.answers(tool, exc.code, exc.reason):
                return plan.Refused(exc.code, exc.reason)
            raise

    async def _compose(
        self,
        request: pb.RunTurnRequest,
        state: conversation_pb2.ConversationState,
        answer: AnswerPlan,
        tool_calls: int,
    ) -> AsyncIterator[pb.RunTurnResponse]:
        """Stream the answer through the LLM pool, then the result with usage."""
        generation = GenerationRequest(
            use_case="tracking",
            prompt=Prompt(
                instructions=INSTRUCTIONS,
                context_block=request.context.block,
                canary=request.canary,
                history=history(state.turns),
                message=request.message,
            ),
            plan=answer,
        )
        async for response in compose(
            self._pool, generation, state=state, tool_calls=tool_calls, canary=request.canary
        ):
            yield response
