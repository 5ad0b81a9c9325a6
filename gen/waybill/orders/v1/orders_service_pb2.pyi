from buf.validate import validate_pb2 as _validate_pb2
from waybill.common.v1 import customer_pb2 as _customer_pb2
from waybill.common.v1 import money_pb2 as _money_pb2
from waybill.orders.v1 import orders_pb2 as _orders_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCustomerRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: _orders_pb2.Customer
    def __init__(self, customer: _Optional[_Union[_orders_pb2.Customer, _Mapping]] = ...) -> None: ...

class ListCustomersRequest(_message.Message):
    __slots__ = ("tenant_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCustomersResponse(_message.Message):
    __slots__ = ("customers", "next_page_token")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[_orders_pb2.Customer]
    next_page_token: str
    def __init__(self, customers: _Optional[_Iterable[_Union[_orders_pb2.Customer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "order_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    order_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _orders_pb2.Order
    def __init__(self, order: _Optional[_Union[_orders_pb2.Order, _Mapping]] = ...) -> None: ...

class ListActiveOrdersRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListActiveOrdersResponse(_message.Message):
    __slots__ = ("orders", "tier", "region")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_customer_pb2.OrderBrief]
    tier: _customer_pb2.CustomerTier
    region: str
    def __init__(self, orders: _Optional[_Iterable[_Union[_customer_pb2.OrderBrief, _Mapping]]] = ..., tier: _Optional[_Union[_customer_pb2.CustomerTier, str]] = ..., region: _Optional[str] = ...) -> None: ...

class GetShipmentRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "awb")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AWB_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    awb: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., awb: _Optional[str] = ...) -> None: ...

class GetShipmentResponse(_message.Message):
    __slots__ = ("shipment",)
    SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    shipment: _orders_pb2.Shipment
    def __init__(self, shipment: _Optional[_Union[_orders_pb2.Shipment, _Mapping]] = ...) -> None: ...

class GetEtaRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "awb", "region")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AWB_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    awb: str
    region: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., awb: _Optional[str] = ..., region: _Optional[str] = ...) -> None: ...

class GetEtaResponse(_message.Message):
    __slots__ = ("eta",)
    ETA_FIELD_NUMBER: _ClassVar[int]
    eta: _orders_pb2.Eta
    def __init__(self, eta: _Optional[_Union[_orders_pb2.Eta, _Mapping]] = ...) -> None: ...

class GetDeliveryPhotoRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "awb")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AWB_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    awb: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., awb: _Optional[str] = ...) -> None: ...

class GetDeliveryPhotoResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: _orders_pb2.DeliveryPhoto
    def __init__(self, photo: _Optional[_Union[_orders_pb2.DeliveryPhoto, _Mapping]] = ...) -> None: ...

class GetFraudScoreRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "order_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    order_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class GetFraudScoreResponse(_message.Message):
    __slots__ = ("score_bp", "model_version", "recent_refunds")
    SCORE_BP_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECENT_REFUNDS_FIELD_NUMBER: _ClassVar[int]
    score_bp: int
    model_version: str
    recent_refunds: int
    def __init__(self, score_bp: _Optional[int] = ..., model_version: _Optional[str] = ..., recent_refunds: _Optional[int] = ...) -> None: ...

class CreateRefundRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "order_id", "amount", "reason", "idempotency_key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    order_id: str
    amount: _money_pb2.Money
    reason: _orders_pb2.RefundReason
    idempotency_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., order_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[_Union[_orders_pb2.RefundReason, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateRefundResponse(_message.Message):
    __slots__ = ("refund", "replayed")
    REFUND_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    refund: _orders_pb2.Refund
    replayed: bool
    def __init__(self, refund: _Optional[_Union[_orders_pb2.Refund, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class SendNotificationRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "channel", "template", "params", "idempotency_key")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    channel: _orders_pb2.NotificationChannel
    template: _orders_pb2.NotificationTemplate
    params: _containers.ScalarMap[str, str]
    idempotency_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., channel: _Optional[_Union[_orders_pb2.NotificationChannel, str]] = ..., template: _Optional[_Union[_orders_pb2.NotificationTemplate, str]] = ..., params: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SendNotificationResponse(_message.Message):
    __slots__ = ("notification_id", "replayed")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    replayed: bool
    def __init__(self, notification_id: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CreateEscalationTicketRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "session_id", "order_id", "reason", "summary", "idempotency_key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    session_id: str
    order_id: str
    reason: _orders_pb2.EscalationReason
    summary: str
    idempotency_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., order_id: _Optional[str] = ..., reason: _Optional[_Union[_orders_pb2.EscalationReason, str]] = ..., summary: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateEscalationTicketResponse(_message.Message):
    __slots__ = ("ticket", "replayed")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    ticket: _orders_pb2.EscalationTicket
    replayed: bool
    def __init__(self, ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ListEscalationTicketsRequest(_message.Message):
    __slots__ = ("tenant_id", "state", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    state: _orders_pb2.TicketState
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., state: _Optional[_Union[_orders_pb2.TicketState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEscalationTicketsResponse(_message.Message):
    __slots__ = ("tickets", "next_page_token")
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tickets: _containers.RepeatedCompositeFieldContainer[_orders_pb2.EscalationTicket]
    next_page_token: str
    def __init__(self, tickets: _Optional[_Iterable[_Union[_orders_pb2.EscalationTicket, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetEscalationTicketRequest(_message.Message):
    __slots__ = ("tenant_id", "ticket_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    ticket_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ...) -> None: ...

class GetEscalationTicketResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _orders_pb2.EscalationTicket
    def __init__(self, ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ...) -> None: ...

class ClaimEscalationTicketRequest(_message.Message):
    __slots__ = ("tenant_id", "ticket_id", "agent_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    ticket_id: str
    agent_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class ClaimEscalationTicketResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _orders_pb2.EscalationTicket
    def __init__(self, ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ...) -> None: ...

class ResolveEscalationTicketRequest(_message.Message):
    __slots__ = ("tenant_id", "ticket_id", "agent_id", "resolution")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    ticket_id: str
    agent_id: str
    resolution: str
    def __init__(self, tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., resolution: _Optional[str] = ...) -> None: ...

class ResolveEscalationTicketResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _orders_pb2.EscalationTicket
    def __init__(self, ticket: _Optional[_Union[_orders_pb2.EscalationTicket, _Mapping]] = ...) -> None: ...

class ListRefundsRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "order_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    order_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class ListRefundsResponse(_message.Message):
    __slots__ = ("refunds",)
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    refunds: _containers.RepeatedCompositeFieldContainer[_orders_pb2.Refund]
    def __init__(self, refunds: _Optional[_Iterable[_Union[_orders_pb2.Refund, _Mapping]]] = ...) -> None: ...
