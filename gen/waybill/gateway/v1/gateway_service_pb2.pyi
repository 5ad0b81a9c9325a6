import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from waybill.common.v1 import conversation_pb2 as _conversation_pb2
from waybill.common.v1 import customer_pb2 as _customer_pb2
from waybill.common.v1 import events_pb2 as _events_pb2
from waybill.common.v1 import intent_pb2 as _intent_pb2
from waybill.common.v1 import usage_pb2 as _usage_pb2
from waybill.ledger.v1 import ledger_service_pb2 as _ledger_service_pb2
from waybill.orders.v1 import orders_pb2 as _orders_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConverseRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "message")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    message: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Final(_message.Message):
    __slots__ = ("intent", "worker", "usage", "answer", "cache_hit", "request_id", "budget_state")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_STATE_FIELD_NUMBER: _ClassVar[int]
    intent: _intent_pb2.Intent
    worker: _intent_pb2.Worker
    usage: _usage_pb2.Usage
    answer: str
    cache_hit: bool
    request_id: str
    budget_state: _ledger_service_pb2.BudgetState
    def __init__(self, intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., worker: _Optional[_Union[_intent_pb2.Worker, str]] = ..., usage: _Optional[_Union[_usage_pb2.Usage, _Mapping]] = ..., answer: _Optional[str] = ..., cache_hit: _Optional[bool] = ..., request_id: _Optional[str] = ..., budget_state: _Optional[_Union[_ledger_service_pb2.BudgetState, str]] = ...) -> None: ...

class TurnEvent(_message.Message):
    __slots__ = ("delta", "tool_call", "confirmation_request", "escalation", "refusal", "error", "final", "citation")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    CITATION_FIELD_NUMBER: _ClassVar[int]
    delta: _events_pb2.TextDelta
    tool_call: _events_pb2.ToolCall
    confirmation_request: _events_pb2.ConfirmationRequest
    escalation: _events_pb2.Escalation
    refusal: _events_pb2.Refusal
    error: _events_pb2.TurnError
    final: Final
    citation: _events_pb2.Citation
    def __init__(self, delta: _Optional[_Union[_events_pb2.TextDelta, _Mapping]] = ..., tool_call: _Optional[_Union[_events_pb2.ToolCall, _Mapping]] = ..., confirmation_request: _Optional[_Union[_events_pb2.ConfirmationRequest, _Mapping]] = ..., escalation: _Optional[_Union[_events_pb2.Escalation, _Mapping]] = ..., refusal: _Optional[_Union[_events_pb2.Refusal, _Mapping]] = ..., error: _Optional[_Union[_events_pb2.TurnError, _Mapping]] = ..., final: _Optional[_Union[Final, _Mapping]] = ..., citation: _Optional[_Union[_events_pb2.Citation, _Mapping]] = ...) -> None: ...

class ConverseResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TurnEvent
    def __init__(self, event: _Optional[_Union[TurnEvent, _Mapping]] = ...) -> None: ...

class ConfirmActionRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "action_id", "decision", "idempotency_key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    action_id: str
    decision: _conversation_pb2.Decision
    idempotency_key: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., action_id: _Optional[str] = ..., decision: _Optional[_Union[_conversation_pb2.Decision, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ConfirmActionResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TurnEvent
    def __init__(self, event: _Optional[_Union[TurnEvent, _Mapping]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id", "user_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "user_id", "state", "expire_time")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    state: _conversation_pb2.ConversationState
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., state: _Optional[_Union[_conversation_pb2.ConversationState, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session", "ticket")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    session: Session
    ticket: _orders_pb2.EscalationTicket
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ...) -> None: ...

class GetCustomerContextRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetCustomerContextResponse(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _customer_pb2.HydratedContext
    def __init__(self, context: _Optional[_Union[_customer_pb2.HydratedContext, _Mapping]] = ...) -> None: ...

class ListCustomersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class CustomerSummary(_message.Message):
    __slots__ = ("user_id", "display_name", "tier", "region")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    display_name: str
    tier: _customer_pb2.CustomerTier
    region: str
    def __init__(self, user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., tier: _Optional[_Union[_customer_pb2.CustomerTier, str]] = ..., region: _Optional[str] = ...) -> None: ...

class ListCustomersResponse(_message.Message):
    __slots__ = ("customers", "next_page_token")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[CustomerSummary]
    next_page_token: str
    def __init__(self, customers: _Optional[_Iterable[_Union[CustomerSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListTicketsRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: _orders_pb2.TicketState
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[_orders_pb2.TicketState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTicketsResponse(_message.Message):
    __slots__ = ("tickets", "next_page_token")
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tickets: _containers.RepeatedCompositeFieldContainer[_orders_pb2.EscalationTicket]
    next_page_token: str
    def __init__(self, tickets: _Optional[_Iterable[_Union[_orders_pb2.EscalationTicket, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ClaimTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "agent_id")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    agent_id: str
    def __init__(self, ticket_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class ClaimTicketResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _orders_pb2.EscalationTicket
    def __init__(self, ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ...) -> None: ...

class ResolveTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "agent_id", "resolution")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    agent_id: str
    resolution: str
    def __init__(self, ticket_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ResolveTicketResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _orders_pb2.EscalationTicket
    def __init__(self, ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ...) -> None: ...
