import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CustomerTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUSTOMER_TIER_UNSPECIFIED: _ClassVar[CustomerTier]
    CUSTOMER_TIER_STANDARD: _ClassVar[CustomerTier]
    CUSTOMER_TIER_SILVER: _ClassVar[CustomerTier]
    CUSTOMER_TIER_GOLD: _ClassVar[CustomerTier]
    CUSTOMER_TIER_PLATINUM: _ClassVar[CustomerTier]

class ShipmentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHIPMENT_STATUS_UNSPECIFIED: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_LABEL_CREATED: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_IN_TRANSIT: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_OUT_FOR_DELIVERY: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_DELIVERED: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_DELAYED: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_DELIVERY_ATTEMPTED: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_LOST: _ClassVar[ShipmentStatus]
    SHIPMENT_STATUS_RETURNED: _ClassVar[ShipmentStatus]
CUSTOMER_TIER_UNSPECIFIED: CustomerTier
CUSTOMER_TIER_STANDARD: CustomerTier
CUSTOMER_TIER_SILVER: CustomerTier
CUSTOMER_TIER_GOLD: CustomerTier
CUSTOMER_TIER_PLATINUM: CustomerTier
SHIPMENT_STATUS_UNSPECIFIED: ShipmentStatus
SHIPMENT_STATUS_LABEL_CREATED: ShipmentStatus
SHIPMENT_STATUS_IN_TRANSIT: ShipmentStatus
SHIPMENT_STATUS_OUT_FOR_DELIVERY: ShipmentStatus
SHIPMENT_STATUS_DELIVERED: ShipmentStatus
SHIPMENT_STATUS_DELAYED: ShipmentStatus
SHIPMENT_STATUS_DELIVERY_ATTEMPTED: ShipmentStatus
SHIPMENT_STATUS_LOST: ShipmentStatus
SHIPMENT_STATUS_RETURNED: ShipmentStatus

class OrderBrief(_message.Message):
    __slots__ = ("order_id", "awb", "title", "status", "eta", "delivery_note")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AWB_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_NOTE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    awb: str
    title: str
    status: ShipmentStatus
    eta: _timestamp_pb2.Timestamp
    delivery_note: str
    def __init__(self, order_id: _Optional[str] = ..., awb: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[_Union[ShipmentStatus, str]] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivery_note: _Optional[str] = ...) -> None: ...

class HydratedContext(_message.Message):
    __slots__ = ("tier", "region", "active_orders", "block")
    TIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ORDERS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    tier: CustomerTier
    region: str
    active_orders: _containers.RepeatedCompositeFieldContainer[OrderBrief]
    block: str
    def __init__(self, tier: _Optional[_Union[CustomerTier, str]] = ..., region: _Optional[str] = ..., active_orders: _Optional[_Iterable[_Union[OrderBrief, _Mapping]]] = ..., block: _Optional[str] = ...) -> None: ...
