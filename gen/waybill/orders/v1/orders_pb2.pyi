import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from waybill.common.v1 import customer_pb2 as _customer_pb2
from waybill.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryLocation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_LOCATION_UNSPECIFIED: _ClassVar[DeliveryLocation]
    DELIVERY_LOCATION_IN_PERSON: _ClassVar[DeliveryLocation]
    DELIVERY_LOCATION_FRONT_DOOR: _ClassVar[DeliveryLocation]
    DELIVERY_LOCATION_BUILDING_RECEPTION: _ClassVar[DeliveryLocation]
    DELIVERY_LOCATION_NEIGHBOUR: _ClassVar[DeliveryLocation]
    DELIVERY_LOCATION_PARCEL_LOCKER: _ClassVar[DeliveryLocation]

class EtaConfidence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ETA_CONFIDENCE_UNSPECIFIED: _ClassVar[EtaConfidence]
    ETA_CONFIDENCE_HIGH: _ClassVar[EtaConfidence]
    ETA_CONFIDENCE_MEDIUM: _ClassVar[EtaConfidence]
    ETA_CONFIDENCE_LOW: _ClassVar[EtaConfidence]

class RefundReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUND_REASON_UNSPECIFIED: _ClassVar[RefundReason]
    REFUND_REASON_DELIVERY_FAILED: _ClassVar[RefundReason]
    REFUND_REASON_WRONG_ITEM: _ClassVar[RefundReason]
    REFUND_REASON_DELIVERY_DISPUTE: _ClassVar[RefundReason]
    REFUND_REASON_CUSTOMER_REQUEST: _ClassVar[RefundReason]
    REFUND_REASON_DAMAGED_ITEM: _ClassVar[RefundReason]

class RefundStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUND_STATUS_UNSPECIFIED: _ClassVar[RefundStatus]
    REFUND_STATUS_APPROVED: _ClassVar[RefundStatus]
    REFUND_STATUS_PAID: _ClassVar[RefundStatus]

class NotificationChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFICATION_CHANNEL_UNSPECIFIED: _ClassVar[NotificationChannel]
    NOTIFICATION_CHANNEL_EMAIL: _ClassVar[NotificationChannel]
    NOTIFICATION_CHANNEL_SMS: _ClassVar[NotificationChannel]
    NOTIFICATION_CHANNEL_PUSH: _ClassVar[NotificationChannel]

class NotificationTemplate(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFICATION_TEMPLATE_UNSPECIFIED: _ClassVar[NotificationTemplate]
    NOTIFICATION_TEMPLATE_REFUND_APPROVED: _ClassVar[NotificationTemplate]
    NOTIFICATION_TEMPLATE_TICKET_OPENED: _ClassVar[NotificationTemplate]

class EscalationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ESCALATION_REASON_UNSPECIFIED: _ClassVar[EscalationReason]
    ESCALATION_REASON_CUSTOMER_REQUEST: _ClassVar[EscalationReason]
    ESCALATION_REASON_FRAUD_RISK: _ClassVar[EscalationReason]
    ESCALATION_REASON_OUT_OF_SCOPE: _ClassVar[EscalationReason]
    ESCALATION_REASON_LOW_CONFIDENCE: _ClassVar[EscalationReason]
    ESCALATION_REASON_LOST_SHIPMENT: _ClassVar[EscalationReason]
    ESCALATION_REASON_REFUND_FREQUENCY: _ClassVar[EscalationReason]

class TicketState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TICKET_STATE_UNSPECIFIED: _ClassVar[TicketState]
    TICKET_STATE_OPEN: _ClassVar[TicketState]
    TICKET_STATE_CLAIMED: _ClassVar[TicketState]
    TICKET_STATE_RESOLVED: _ClassVar[TicketState]
DELIVERY_LOCATION_UNSPECIFIED: DeliveryLocation
DELIVERY_LOCATION_IN_PERSON: DeliveryLocation
DELIVERY_LOCATION_FRONT_DOOR: DeliveryLocation
DELIVERY_LOCATION_BUILDING_RECEPTION: DeliveryLocation
DELIVERY_LOCATION_NEIGHBOUR: DeliveryLocation
DELIVERY_LOCATION_PARCEL_LOCKER: DeliveryLocation
ETA_CONFIDENCE_UNSPECIFIED: EtaConfidence
ETA_CONFIDENCE_HIGH: EtaConfidence
ETA_CONFIDENCE_MEDIUM: EtaConfidence
ETA_CONFIDENCE_LOW: EtaConfidence
REFUND_REASON_UNSPECIFIED: RefundReason
REFUND_REASON_DELIVERY_FAILED: RefundReason
REFUND_REASON_WRONG_ITEM: RefundReason
REFUND_REASON_DELIVERY_DISPUTE: RefundReason
REFUND_REASON_CUSTOMER_REQUEST: RefundReason
REFUND_REASON_DAMAGED_ITEM: RefundReason
REFUND_STATUS_UNSPECIFIED: RefundStatus
REFUND_STATUS_APPROVED: RefundStatus
REFUND_STATUS_PAID: RefundStatus
NOTIFICATION_CHANNEL_UNSPECIFIED: NotificationChannel
NOTIFICATION_CHANNEL_EMAIL: NotificationChannel
NOTIFICATION_CHANNEL_SMS: NotificationChannel
NOTIFICATION_CHANNEL_PUSH: NotificationChannel
NOTIFICATION_TEMPLATE_UNSPECIFIED: NotificationTemplate
NOTIFICATION_TEMPLATE_REFUND_APPROVED: NotificationTemplate
NOTIFICATION_TEMPLATE_TICKET_OPENED: NotificationTemplate
ESCALATION_REASON_UNSPECIFIED: EscalationReason
ESCALATION_REASON_CUSTOMER_REQUEST: EscalationReason
ESCALATION_REASON_FRAUD_RISK: EscalationReason
ESCALATION_REASON_OUT_OF_SCOPE: EscalationReason
ESCALATION_REASON_LOW_CONFIDENCE: EscalationReason
ESCALATION_REASON_LOST_SHIPMENT: EscalationReason
ESCALATION_REASON_REFUND_FREQUENCY: EscalationReason
TICKET_STATE_UNSPECIFIED: TicketState
TICKET_STATE_OPEN: TicketState
TICKET_STATE_CLAIMED: TicketState
TICKET_STATE_RESOLVED: TicketState

class Customer(_message.Message):
    __slots__ = ("user_id", "tenant_id", "display_name", "tier", "region")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    tenant_id: str
    display_name: str
    tier: _customer_pb2.CustomerTier
    region: str
    def __init__(self, user_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., tier: _Optional[_Union[_customer_pb2.CustomerTier, str]] = ..., region: _Optional[str] = ...) -> None: ...

class OrderLine(_message.Message):
    __slots__ = ("sku", "title", "category", "quantity", "unit_price")
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    title: str
    category: str
    quantity: int
    unit_price: _money_pb2.Money
    def __init__(self, sku: _Optional[str] = ..., title: _Optional[str] = ..., category: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "user_id", "lines", "total", "refunded", "create_time", "awb", "title", "delivery_note")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    AWB_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_NOTE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    user_id: str
    lines: _containers.RepeatedCompositeFieldContainer[OrderLine]
    total: _money_pb2.Money
    refunded: _money_pb2.Money
    create_time: _timestamp_pb2.Timestamp
    awb: str
    title: str
    delivery_note: str
    def __init__(self, order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[OrderLine, _Mapping]]] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., refunded: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., awb: _Optional[str] = ..., title: _Optional[str] = ..., delivery_note: _Optional[str] = ...) -> None: ...

class ShipmentEvent(_message.Message):
    __slots__ = ("event_time", "status", "location", "description")
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    event_time: _timestamp_pb2.Timestamp
    status: _customer_pb2.ShipmentStatus
    location: str
    description: str
    def __init__(self, event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[_customer_pb2.ShipmentStatus, str]] = ..., location: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class Shipment(_message.Message):
    __slots__ = ("awb", "order_id", "carrier", "status", "destination_region", "events", "promised_time", "delivered_time", "delivery_location", "has_delivery_photo")
    AWB_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_REGION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROMISED_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_LOCATION_FIELD_NUMBER: _ClassVar[int]
    HAS_DELIVERY_PHOTO_FIELD_NUMBER: _ClassVar[int]
    awb: str
    order_id: str
    carrier: str
    status: _customer_pb2.ShipmentStatus
    destination_region: str
    events: _containers.RepeatedCompositeFieldContainer[ShipmentEvent]
    promised_time: _timestamp_pb2.Timestamp
    delivered_time: _timestamp_pb2.Timestamp
    delivery_location: DeliveryLocation
    has_delivery_photo: bool
    def __init__(self, awb: _Optional[str] = ..., order_id: _Optional[str] = ..., carrier: _Optional[str] = ..., status: _Optional[_Union[_customer_pb2.ShipmentStatus, str]] = ..., destination_region: _Optional[str] = ..., events: _Optional[_Iterable[_Union[ShipmentEvent, _Mapping]]] = ..., promised_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivery_location: _Optional[_Union[DeliveryLocation, str]] = ..., has_delivery_photo: _Optional[bool] = ...) -> None: ...

class Eta(_message.Message):
    __slots__ = ("awb", "window_start_time", "window_end_time", "confidence", "delivered")
    AWB_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_TIME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_TIME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    awb: str
    window_start_time: _timestamp_pb2.Timestamp
    window_end_time: _timestamp_pb2.Timestamp
    confidence: EtaConfidence
    delivered: bool
    def __init__(self, awb: _Optional[str] = ..., window_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., confidence: _Optional[_Union[EtaConfidence, str]] = ..., delivered: _Optional[bool] = ...) -> None: ...

class DeliveryPhoto(_message.Message):
    __slots__ = ("awb", "photo_ref", "capture_time", "location")
    AWB_FIELD_NUMBER: _ClassVar[int]
    PHOTO_REF_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    awb: str
    photo_ref: str
    capture_time: _timestamp_pb2.Timestamp
    location: DeliveryLocation
    def __init__(self, awb: _Optional[str] = ..., photo_ref: _Optional[str] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location: _Optional[_Union[DeliveryLocation, str]] = ...) -> None: ...

class Refund(_message.Message):
    __slots__ = ("refund_id", "order_id", "amount", "reason", "status", "idempotency_key", "create_time")
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    refund_id: str
    order_id: str
    amount: _money_pb2.Money
    reason: RefundReason
    status: RefundStatus
    idempotency_key: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, refund_id: _Optional[str] = ..., order_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[_Union[RefundReason, str]] = ..., status: _Optional[_Union[RefundStatus, str]] = ..., idempotency_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EscalationTicket(_message.Message):
    __slots__ = ("ticket_id", "queue", "priority", "reason", "create_time", "state", "user_id", "session_id", "order_id", "summary", "agent_id", "claim_time", "resolve_time", "resolution")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIM_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    queue: str
    priority: int
    reason: EscalationReason
    create_time: _timestamp_pb2.Timestamp
    state: TicketState
    user_id: str
    session_id: str
    order_id: str
    summary: str
    agent_id: str
    claim_time: _timestamp_pb2.Timestamp
    resolve_time: _timestamp_pb2.Timestamp
    resolution: str
    def __init__(self, ticket_id: _Optional[str] = ..., queue: _Optional[str] = ..., priority: _Optional[int] = ..., reason: _Optional[_Union[EscalationReason, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[TicketState, str]] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., order_id: _Optional[str] = ..., summary: _Optional[str] = ..., agent_id: _Optional[str] = ..., claim_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolve_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolution: _Optional[str] = ...) -> None: ...
