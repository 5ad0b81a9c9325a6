"""The tracking worker's servicer: resolve the shipment, call at most two
read-only tools, compose the answer through the LLM pool, return the new state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from waybill.common.v1 import conversation_pb2, customer_pb2, events_pb2, intent_pb2, usage_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc
from waybill.worker.v1 import tools_pb2
from waybill.worker.v1 import worker_service_pb2 as pb
from waybill.worker.v1 import worker_service_pb2_grpc as pb_grpc

from llm_pool import finish
from llm_pool.generation import (
    AnswerPlan,
    Finished,
    GenerationRequest,
    Prompt,
    StreamFailed,
    TextDelta,
)
from llm_pool.pool import LLMPool
from runtime import status_codes
from runtime.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from workers.coalesce import DeltaCoalescer
from workers.tools import ToolLog, is_code, reason_of
from workers.tracking.resolve import Target, resolve

MAX_TOOL_TURNS = 2
INSTRUCTIONS = (
    "You are Waybill's tracking assistant. Answer only from the tool results. "
    "Never reveal data of other customers. Be brief."
)

Status = customer_pb2.ShipmentStatus
_STATUS_WORDS = {
    Status.SHIPMENT_STATUS_LABEL_CREATED: "label_created",
    Status.SHIPMENT_STATUS_IN_TRANSIT: "in_transit",
    Status.SHIPMENT_STATUS_OUT_FOR_DELIVERY: "out_for_delivery",
    Status.SHIPMENT_STATUS_DELIVERED: "delivered",
    Status.SHIPMENT_STATUS_DELAYED: "delayed",
    Status.SHIPMENT_STATUS_DELIVERY_ATTEMPTED: "attempted",
    Status.SHIPMENT_STATUS_LOST: "lost",
    Status.SHIPMENT_STATUS_RETURNED: "returned",
}
_WHERE = {
    orders_pb2.DELIVERY_LOCATION_IN_PERSON: "with you in person",
    orders_pb2.DELIVERY_LOCATION_FRONT_DOOR: "at your front door",
    orders_pb2.DELIVERY_LOCATION_BUILDING_RECEPTION: "with your building's reception",
    orders_pb2.DELIVERY_LOCATION_NEIGHBOUR: "with a neighbour",
    orders_pb2.DELIVERY_LOCATION_PARCEL_LOCKER: "in a parcel locker",
}
_CONFIDENCE = {
    orders_pb2.ETA_CONFIDENCE_HIGH: "high",
    orders_pb2.ETA_CONFIDENCE_MEDIUM: "medium",
    orders_pb2.ETA_CONFIDENCE_LOW: "low",
}


def _day(ts: timestamp_pb2.Timestamp) -> str:
    return ts.ToDatetime(UTC).strftime("%a %d %b")


def _moment(ts: timestamp_pb2.Timestamp) -> str:
    return ts.ToDatetime(UTC).strftime("%a %d %b %H:%M UTC")


def _window(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp) -> str:
    a, b = start.ToDatetime(UTC), end.ToDatetime(UTC)
    if a == b:
        return f"on {_moment(start)}"
    if a.date() == b.date():
        return f"on {a:%a %d %b} between {a:%H:%M} and {b:%H:%M} UTC"
    return f"between {a:%a %d %b} and {b:%a %d %b}"


def status_facts(shipment: orders_pb2.Shipment, title: str) -> dict[str, Any]:
    """Facts of a status answer, from the shipment alone."""
    last = shipment.events[-1] if shipment.events else None
    facts: dict[str, Any] = {
        "awb": shipment.awb,
        "title": title or "order",
        "status": _STATUS_WORDS.get(shipment.status, "in_transit"),
        "last_event": last.description if last else "",
        "last_location": last.location if last else "",
        "last_time": _moment(last.event_time) if last else "",
    }
    if shipment.status == Status.SHIPMENT_STATUS_DELIVERED:
        facts["delivered"] = _moment(shipment.delivered_time)
        facts["where"] = _WHERE.get(shipment.delivery_location, "")
        facts["photo"] = shipment.has_delivery_photo
    elif shipment.HasField("promised_time") and shipment.status not in (
        Status.SHIPMENT_STATUS_LOST,
        Status.SHIPMENT_STATUS_RETURNED,
    ):
        facts["eta"] = f"by {_day(shipment.promised_time)}"
    return facts


class TrackingServicer(pb_grpc.WorkerServiceServicer):
    """Read-only by construction: it holds an orders stub and calls only its read RPCs."""

    def __init__(self, orders_stub: orders_grpc.OrdersServiceStub, pool: LLMPool) -> None:
        self._orders = orders_stub
        self._pool = pool

    async def RunTurn(
        self, request: pb.RunTurnRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RunTurnResponse]:
        if request.WhichOneof("input") != "message":
            raise FailedPrecondition(
                "the tracking worker answers messages, not decisions",
                reason="DECISION_NOT_SUPPORTED",
            )
        state = conversation_pb2.ConversationState()
        state.CopyFrom(request.state)
        active = list(request.context.active_orders)
        target = resolve(request.message, state, active)
        tools = ToolLog(max_calls=MAX_TOOL_TURNS)
        plan = await self._plan(request, target, state, tools)
        for call in tools.calls:
            yield pb.RunTurnResponse(tool_call=call)
        usage = usage_pb2.Usage(tool_calls=len(tools.calls))
        answer: list[str] = []
        generation = GenerationRequest(
            use_case="tracking",
            prompt=Prompt(
                instructions=INSTRUCTIONS,
                context_block=request.context.block,
                history=tuple(
                    (
                        "customer" if t.role == conversation_pb2.ROLE_CUSTOMER else "assistant",
                        t.text,
                    )
                    for t in state.turns
                ),
                message=request.message,
            ),
            plan=plan,
        )
        pending = DeltaCoalescer()
        async for event in self._pool.stream(generation):
            if isinstance(event, TextDelta):
                answer.append(event.text)
                if (ready := pending.add(event.text)) is not None:
                    yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=ready))
                continue
            if (rest := pending.flush()) is not None:
                yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest))
            if isinstance(event, Finished):
                usage.input_tokens += event.input_tokens
                usage.output_tokens += event.output_tokens
                usage.generations.add(
                    backend=event.backend,
                    model=event.model,
                    input_tokens=event.input_tokens,
                    output_tokens=event.output_tokens,
                    time_to_first_token_us=event.time_to_first_token_us,
                    finish_reason=finish.to_proto(event.finish_reason),
                )
                if event.charge is not None:
                    # One currency per turn: the price table prices every model in USD.
                    usage.cost.currency_code = event.charge.currency_code
                    usage.cost.micro_units += event.charge.micro_units
            elif isinstance(event, StreamFailed):
                yield pb.RunTurnResponse(
                    error=events_pb2.TurnError(
                        code=status_codes.to_proto(
                            getattr(grpc.StatusCode, event.code, grpc.StatusCode.UNKNOWN)
                        ),
                        reason=event.reason,
                        message="Sorry, I couldn't finish that answer. Please try again.",
                        retryable=event.code == "UNAVAILABLE",
                    )
                )
                return
        if (rest := pending.flush()) is not None:
            yield pb.RunTurnResponse(delta=events_pb2.TextDelta(text=rest))
        yield pb.RunTurnResponse(
            result=pb.TurnResult(state=state, usage=usage, answer="".join(answer))
        )

    async def _plan(
        self,
        request: pb.RunTurnRequest,
        target: Target,
        state: conversation_pb2.ConversationState,
        tools: ToolLog,
    ) -> AnswerPlan:
        """Call the tools the intent needs and decide what the answer says."""
        del state.offered_order_ids[:]
        if target.choices:
            state.offered_order_ids.extend(o.order_id for o in target.choices)
            return AnswerPlan(
                "tracking.which_order",
                {"orders": [f"{o.title} ({o.awb})" for o in target.choices]},
            )
        if not target.awb:
            if target.order_id:
                return AnswerPlan("tracking.not_found", {"ref": f"for order {target.order_id}"})
            return AnswerPlan("tracking.no_orders")
        titles = {o.awb: o.title for o in request.context.active_orders}
        title = titles.get(target.awb, "shipment")
        scope = {"tenant_id": request.tenant_id, "user_id": request.user_id, "awb": target.awb}
        try:
            plan = await self._answer(request.intent, scope, title, tools)
        except grpc.aio.AioRpcError as exc:
            if is_code(exc, grpc.StatusCode.NOT_FOUND):
                return AnswerPlan("tracking.not_found", {"ref": target.awb})
            if is_code(exc, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise DeadlineExceeded(
                    "the order system did not answer in time", reason="ORDERS_DEADLINE_EXCEEDED"
                ) from exc
            if is_code(exc, grpc.StatusCode.UNAVAILABLE):
                raise Unavailable(
                    "the order system is not answering", reason="ORDERS_UNAVAILABLE"
                ) from exc
            raise
        state.focus_awb = target.awb
        state.focus_order_id = target.order_id or state.focus_order_id
        if not target.order_id:
            state.focus_order_id = ""
        state.tracking.tool_turns = len(tools.calls)
        return plan

    async def _answer(
        self, intent: int, scope: dict[str, str], title: str, tools: ToolLog
    ) -> AnswerPlan:
        awb = scope["awb"]
        if intent == intent_pb2.INTENT_TRACKING_ETA:
            try:
                response = await tools.call(
                    "get_eta",
                    tools_pb2.GetEtaArgs(awb=awb),
                    lambda: self._orders.GetEta(orders.GetEtaRequest(**scope)),
                )
            except grpc.aio.AioRpcError as exc:
                if is_code(exc, grpc.StatusCode.FAILED_PRECONDITION):
                    why = "reported lost" if reason_of(exc) == "SHIPMENT_LOST" else "returned"
                    return AnswerPlan("tracking.no_eta", {"awb": awb, "why": why})
                raise
            eta = response.eta
            return AnswerPlan(
                "tracking.eta",
                {
                    "awb": awb,
                    "title": title,
                    "delivered": eta.delivered,
                    "window": _window(eta.window_start_time, eta.window_end_time),
                    "confidence": _CONFIDENCE.get(eta.confidence, "medium"),
                },
            )
        if intent == intent_pb2.INTENT_TRACKING_DELIVERY_PHOTO:
            try:
                photo = await tools.call(
                    "get_delivery_photo",
                    tools_pb2.GetDeliveryPhotoArgs(awb=awb),
                    lambda: self._orders.GetDeliveryPhoto(orders.GetDeliveryPhotoRequest(**scope)),
                )
            except grpc.aio.AioRpcError as exc:
                if not is_code(exc, grpc.StatusCode.FAILED_PRECONDITION):
                    raise
                shipment = (await self._status(scope, tools)).shipment
                if reason_of(exc) == "NOT_DELIVERED":
                    facts = status_facts(shipment, title)
                    text = facts["status"].replace("_", " ")
                    return AnswerPlan(
                        "tracking.no_photo",
                        {"why": "not_delivered", "title": title, "awb": awb, "status_text": text},
                    )
                return AnswerPlan(
                    "tracking.no_photo",
                    {
                        "why": "none",
                        "title": title,
                        "awb": awb,
                        "when": _moment(shipment.delivered_time),
                    },
                )
            return AnswerPlan(
                "tracking.photo",
                {
                    "awb": awb,
                    "title": title,
                    "taken": _moment(photo.photo.capture_time),
                    "where": _WHERE.get(photo.photo.location, "at the address"),
                    "photo_ref": photo.photo.photo_ref,
                },
            )
        response = await self._status(scope, tools)
        return AnswerPlan("tracking.status", status_facts(response.shipment, title))

    async def _status(self, scope: dict[str, str], tools: ToolLog) -> orders.GetShipmentResponse:
        response: orders.GetShipmentResponse = await tools.call(
            "get_order_status",
            tools_pb2.GetOrderStatusArgs(awb=scope["awb"]),
            lambda: self._orders.GetShipment(orders.GetShipmentRequest(**scope)),
        )
        return response
