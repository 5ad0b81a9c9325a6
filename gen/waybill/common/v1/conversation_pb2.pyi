import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from waybill.common.v1 import intent_pb2 as _intent_pb2
from waybill.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_CUSTOMER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]

class ActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_KIND_UNSPECIFIED: _ClassVar[ActionKind]
    ACTION_KIND_REFUND: _ClassVar[ActionKind]
    ACTION_KIND_CANCELLATION: _ClassVar[ActionKind]

class NegotiationStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEGOTIATION_STAGE_UNSPECIFIED: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_GATHERING: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_FRAUD_CHECKED: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_AWAITING_CONFIRMATION: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_REFUNDED: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_COMPLETED: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_DECLINED: _ClassVar[NegotiationStage]
    NEGOTIATION_STAGE_ESCALATED: _ClassVar[NegotiationStage]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_CONFIRM: _ClassVar[Decision]
    DECISION_DECLINE: _ClassVar[Decision]
ROLE_UNSPECIFIED: Role
ROLE_CUSTOMER: Role
ROLE_ASSISTANT: Role
ACTION_KIND_UNSPECIFIED: ActionKind
ACTION_KIND_REFUND: ActionKind
ACTION_KIND_CANCELLATION: ActionKind
NEGOTIATION_STAGE_UNSPECIFIED: NegotiationStage
NEGOTIATION_STAGE_GATHERING: NegotiationStage
NEGOTIATION_STAGE_FRAUD_CHECKED: NegotiationStage
NEGOTIATION_STAGE_AWAITING_CONFIRMATION: NegotiationStage
NEGOTIATION_STAGE_REFUNDED: NegotiationStage
NEGOTIATION_STAGE_COMPLETED: NegotiationStage
NEGOTIATION_STAGE_DECLINED: NegotiationStage
NEGOTIATION_STAGE_ESCALATED: NegotiationStage
DECISION_UNSPECIFIED: Decision
DECISION_CONFIRM: Decision
DECISION_DECLINE: Decision

class Turn(_message.Message):
    __slots__ = ("role", "text", "intent", "create_time")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    role: Role
    text: str
    intent: _intent_pb2.Intent
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., text: _Optional[str] = ..., intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PendingAction(_message.Message):
    __slots__ = ("action_id", "kind", "order_id", "amount", "summary", "expire_time")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    kind: ActionKind
    order_id: str
    amount: _money_pb2.Money
    summary: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, action_id: _Optional[str] = ..., kind: _Optional[_Union[ActionKind, str]] = ..., order_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., summary: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrackingState(_message.Message):
    __slots__ = ("tool_turns",)
    TOOL_TURNS_FIELD_NUMBER: _ClassVar[int]
    tool_turns: int
    def __init__(self, tool_turns: _Optional[int] = ...) -> None: ...

class PolicyState(_message.Message):
    __slots__ = ("cited_chunk_ids",)
    CITED_CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    cited_chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cited_chunk_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class NegotiationState(_message.Message):
    __slots__ = ("stage", "order_id", "fraud_score_bp", "refund_id", "model_turns", "refund_reason", "case_intent", "case_turns", "recent_refunds")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FRAUD_SCORE_BP_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_TURNS_FIELD_NUMBER: _ClassVar[int]
    REFUND_REASON_FIELD_NUMBER: _ClassVar[int]
    CASE_INTENT_FIELD_NUMBER: _ClassVar[int]
    CASE_TURNS_FIELD_NUMBER: _ClassVar[int]
    RECENT_REFUNDS_FIELD_NUMBER: _ClassVar[int]
    stage: NegotiationStage
    order_id: str
    fraud_score_bp: int
    refund_id: str
    model_turns: int
    refund_reason: str
    case_intent: _intent_pb2.Intent
    case_turns: int
    recent_refunds: int
    def __init__(self, stage: _Optional[_Union[NegotiationStage, str]] = ..., order_id: _Optional[str] = ..., fraud_score_bp: _Optional[int] = ..., refund_id: _Optional[str] = ..., model_turns: _Optional[int] = ..., refund_reason: _Optional[str] = ..., case_intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., case_turns: _Optional[int] = ..., recent_refunds: _Optional[int] = ...) -> None: ...

class ConversationState(_message.Message):
    __slots__ = ("turns", "focus_awb", "focus_order_id", "offered_order_ids", "pending_action", "tracking", "policy", "negotiation", "hand_over")
    TURNS_FIELD_NUMBER: _ClassVar[int]
    FOCUS_AWB_FIELD_NUMBER: _ClassVar[int]
    FOCUS_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERED_ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    PENDING_ACTION_FIELD_NUMBER: _ClassVar[int]
    TRACKING_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    NEGOTIATION_FIELD_NUMBER: _ClassVar[int]
    HAND_OVER_FIELD_NUMBER: _ClassVar[int]
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    focus_awb: str
    focus_order_id: str
    offered_order_ids: _containers.RepeatedScalarFieldContainer[str]
    pending_action: PendingAction
    tracking: TrackingState
    policy: PolicyState
    negotiation: NegotiationState
    hand_over: HandOver
    def __init__(self, turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., focus_awb: _Optional[str] = ..., focus_order_id: _Optional[str] = ..., offered_order_ids: _Optional[_Iterable[str]] = ..., pending_action: _Optional[_Union[PendingAction, _Mapping]] = ..., tracking: _Optional[_Union[TrackingState, _Mapping]] = ..., policy: _Optional[_Union[PolicyState, _Mapping]] = ..., negotiation: _Optional[_Union[NegotiationState, _Mapping]] = ..., hand_over: _Optional[_Union[HandOver, _Mapping]] = ...) -> None: ...

class HandOver(_message.Message):
    __slots__ = ("ticket_id", "queue")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    queue: str
    def __init__(self, ticket_id: _Optional[str] = ..., queue: _Optional[str] = ...) -> None: ...
