from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Intent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTENT_UNSPECIFIED: _ClassVar[Intent]
    INTENT_TRACKING_STATUS: _ClassVar[Intent]
    INTENT_TRACKING_ETA: _ClassVar[Intent]
    INTENT_TRACKING_DELIVERY_PHOTO: _ClassVar[Intent]
    INTENT_POLICY_RETURN_WINDOW: _ClassVar[Intent]
    INTENT_POLICY_REFUND: _ClassVar[Intent]
    INTENT_POLICY_EXCHANGE: _ClassVar[Intent]
    INTENT_POLICY_SHIPPING: _ClassVar[Intent]
    INTENT_POLICY_CANCELLATION_FEE: _ClassVar[Intent]
    INTENT_NEGOTIATION_REFUND_REQUEST: _ClassVar[Intent]
    INTENT_NEGOTIATION_DELIVERY_DISPUTE: _ClassVar[Intent]
    INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM: _ClassVar[Intent]
    INTENT_NEGOTIATION_CANCELLATION: _ClassVar[Intent]
    INTENT_HUMAN_HANDOFF: _ClassVar[Intent]
    INTENT_OTHER: _ClassVar[Intent]

class Worker(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_UNSPECIFIED: _ClassVar[Worker]
    WORKER_TRACKING: _ClassVar[Worker]
    WORKER_POLICY: _ClassVar[Worker]
    WORKER_NEGOTIATION: _ClassVar[Worker]
    WORKER_HUMAN: _ClassVar[Worker]
INTENT_UNSPECIFIED: Intent
INTENT_TRACKING_STATUS: Intent
INTENT_TRACKING_ETA: Intent
INTENT_TRACKING_DELIVERY_PHOTO: Intent
INTENT_POLICY_RETURN_WINDOW: Intent
INTENT_POLICY_REFUND: Intent
INTENT_POLICY_EXCHANGE: Intent
INTENT_POLICY_SHIPPING: Intent
INTENT_POLICY_CANCELLATION_FEE: Intent
INTENT_NEGOTIATION_REFUND_REQUEST: Intent
INTENT_NEGOTIATION_DELIVERY_DISPUTE: Intent
INTENT_NEGOTIATION_DAMAGED_OR_WRONG_ITEM: Intent
INTENT_NEGOTIATION_CANCELLATION: Intent
INTENT_HUMAN_HANDOFF: Intent
INTENT_OTHER: Intent
WORKER_UNSPECIFIED: Worker
WORKER_TRACKING: Worker
WORKER_POLICY: Worker
WORKER_NEGOTIATION: Worker
WORKER_HUMAN: Worker
