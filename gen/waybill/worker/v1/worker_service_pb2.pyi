from buf.validate import validate_pb2 as _validate_pb2
from waybill.common.v1 import conversation_pb2 as _conversation_pb2
from waybill.common.v1 import customer_pb2 as _customer_pb2
from waybill.common.v1 import events_pb2 as _events_pb2
from waybill.common.v1 import intent_pb2 as _intent_pb2
from waybill.common.v1 import usage_pb2 as _usage_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActionDecision(_message.Message):
    __slots__ = ("action_id", "decision")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    decision: _conversation_pb2.Decision
    def __init__(self, action_id: _Optional[str] = ..., decision: _Optional[_Union[_conversation_pb2.Decision, str]] = ...) -> None: ...

class RunTurnRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "session_id", "message", "decision", "intent", "confidence", "state", "context", "canary")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    session_id: str
    message: str
    decision: ActionDecision
    intent: _intent_pb2.Intent
    confidence: float
    state: _conversation_pb2.ConversationState
    context: _customer_pb2.HydratedContext
    canary: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., message: _Optional[str] = ..., decision: _Optional[_Union[ActionDecision, _Mapping]] = ..., intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., confidence: _Optional[float] = ..., state: _Optional[_Union[_conversation_pb2.ConversationState, _Mapping]] = ..., context: _Optional[_Union[_customer_pb2.HydratedContext, _Mapping]] = ..., canary: _Optional[str] = ...) -> None: ...

class TurnResult(_message.Message):
    __slots__ = ("state", "usage", "answer")
    STATE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    state: _conversation_pb2.ConversationState
    usage: _usage_pb2.Usage
    answer: str
    def __init__(self, state: _Optional[_Union[_conversation_pb2.ConversationState, _Mapping]] = ..., usage: _Optional[_Union[_usage_pb2.Usage, _Mapping]] = ..., answer: _Optional[str] = ...) -> None: ...

class RunTurnResponse(_message.Message):
    __slots__ = ("delta", "tool_call", "confirmation_request", "escalation", "error", "result", "citation", "refusal")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CITATION_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    delta: _events_pb2.TextDelta
    tool_call: _events_pb2.ToolCall
    confirmation_request: _events_pb2.ConfirmationRequest
    escalation: _events_pb2.Escalation
    error: _events_pb2.TurnError
    result: TurnResult
    citation: _events_pb2.Citation
    refusal: _events_pb2.Refusal
    def __init__(self, delta: _Optional[_Union[_events_pb2.TextDelta, _Mapping]] = ..., tool_call: _Optional[_Union[_events_pb2.ToolCall, _Mapping]] = ..., confirmation_request: _Optional[_Union[_events_pb2.ConfirmationRequest, _Mapping]] = ..., escalation: _Optional[_Union[_events_pb2.Escalation, _Mapping]] = ..., error: _Optional[_Union[_events_pb2.TurnError, _Mapping]] = ..., result: _Optional[_Union[TurnResult, _Mapping]] = ..., citation: _Optional[_Union[_events_pb2.Citation, _Mapping]] = ..., refusal: _Optional[_Union[_events_pb2.Refusal, _Mapping]] = ...) -> None: ...
