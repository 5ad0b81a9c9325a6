from buf.validate import validate_pb2 as _validate_pb2
from waybill.common.v1 import customer_pb2 as _customer_pb2
from waybill.common.v1 import money_pb2 as _money_pb2
from waybill.orders.v1 import orders_pb2 as _orders_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetOrderStatusArgs(_message.Message):
    __slots__ = ("awb",)
    AWB_FIELD_NUMBER: _ClassVar[int]
    awb: str
    def __init__(self, awb: _Optional[str] = ...) -> None: ...

class GetEtaArgs(_message.Message):
    __slots__ = ("awb", "region")
    AWB_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    awb: str
    region: str
    def __init__(self, awb: _Optional[str] = ..., region: _Optional[str] = ...) -> None: ...

class GetDeliveryPhotoArgs(_message.Message):
    __slots__ = ("awb",)
    AWB_FIELD_NUMBER: _ClassVar[int]
    awb: str
    def __init__(self, awb: _Optional[str] = ...) -> None: ...

class SearchPolicyArgs(_message.Message):
    __slots__ = ("query", "region", "product_category")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    query: str
    region: str
    product_category: str
    def __init__(self, query: _Optional[str] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ...) -> None: ...

class GetOrderArgs(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class GetReturnWindowArgs(_message.Message):
    __slots__ = ("sku", "tier", "region", "product_category")
    SKU_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    tier: _customer_pb2.CustomerTier
    region: str
    product_category: str
    def __init__(self, sku: _Optional[str] = ..., tier: _Optional[_Union[_customer_pb2.CustomerTier, str]] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ...) -> None: ...

class ListRefundsArgs(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class CheckFraudScoreArgs(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class InitiateRefundArgs(_message.Message):
    __slots__ = ("order_id", "amount", "reason_code", "order_total")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TOTAL_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    amount: _money_pb2.Money
    reason_code: _orders_pb2.RefundReason
    order_total: _money_pb2.Money
    def __init__(self, order_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason_code: _Optional[_Union[_orders_pb2.RefundReason, str]] = ..., order_total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class SendNotificationArgs(_message.Message):
    __slots__ = ("channel", "template")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    channel: _orders_pb2.NotificationChannel
    template: _orders_pb2.NotificationTemplate
    def __init__(self, channel: _Optional[_Union[_orders_pb2.NotificationChannel, str]] = ..., template: _Optional[_Union[_orders_pb2.NotificationTemplate, str]] = ...) -> None: ...

class EscalateArgs(_message.Message):
    __slots__ = ("reason", "summary")
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    reason: _orders_pb2.EscalationReason
    summary: str
    def __init__(self, reason: _Optional[_Union[_orders_pb2.EscalationReason, str]] = ..., summary: _Optional[str] = ...) -> None: ...
