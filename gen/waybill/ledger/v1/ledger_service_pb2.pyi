import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from waybill.common.v1 import money_pb2 as _money_pb2
from waybill.common.v1 import usage_pb2 as _usage_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BudgetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_STATE_UNSPECIFIED: _ClassVar[BudgetState]
    BUDGET_STATE_OK: _ClassVar[BudgetState]
    BUDGET_STATE_SOFT_LIMIT: _ClassVar[BudgetState]
    BUDGET_STATE_HARD_LIMIT: _ClassVar[BudgetState]

class GroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_BY_UNSPECIFIED: _ClassVar[GroupBy]
    GROUP_BY_TEAM: _ClassVar[GroupBy]
    GROUP_BY_FEATURE: _ClassVar[GroupBy]
    GROUP_BY_MODEL: _ClassVar[GroupBy]
    GROUP_BY_DAY: _ClassVar[GroupBy]
    GROUP_BY_USER: _ClassVar[GroupBy]
BUDGET_STATE_UNSPECIFIED: BudgetState
BUDGET_STATE_OK: BudgetState
BUDGET_STATE_SOFT_LIMIT: BudgetState
BUDGET_STATE_HARD_LIMIT: BudgetState
GROUP_BY_UNSPECIFIED: GroupBy
GROUP_BY_TEAM: GroupBy
GROUP_BY_FEATURE: GroupBy
GROUP_BY_MODEL: GroupBy
GROUP_BY_DAY: GroupBy
GROUP_BY_USER: GroupBy

class ReserveRequest(_message.Message):
    __slots__ = ("request_id", "tenant_id", "team_id", "feature_id", "estimate", "user_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURE_ID_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    tenant_id: str
    team_id: str
    feature_id: str
    estimate: _money_pb2.Cost
    user_id: str
    def __init__(self, request_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., team_id: _Optional[str] = ..., feature_id: _Optional[str] = ..., estimate: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("reservation_id", "state", "expire_time")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    state: BudgetState
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, reservation_id: _Optional[str] = ..., state: _Optional[_Union[BudgetState, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("reservation_id", "usage", "tenant_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    usage: _usage_pb2.Usage
    tenant_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., usage: _Optional[_Union[_usage_pb2.Usage, _Mapping]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("charged", "state")
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    charged: _money_pb2.Cost
    state: BudgetState
    def __init__(self, charged: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ..., state: _Optional[_Union[BudgetState, str]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("reservation_id", "tenant_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    tenant_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: bool
    def __init__(self, released: _Optional[bool] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("tenant_id", "team_id", "limit", "spent", "reserved", "state")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SPENT_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    team_id: str
    limit: _money_pb2.Cost
    spent: _money_pb2.Cost
    reserved: _money_pb2.Cost
    state: BudgetState
    def __init__(self, tenant_id: _Optional[str] = ..., team_id: _Optional[str] = ..., limit: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ..., spent: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ..., reserved: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ..., state: _Optional[_Union[BudgetState, str]] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ("tenant_id", "team_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    team_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., team_id: _Optional[str] = ...) -> None: ...

class GetBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class SetBudgetRequest(_message.Message):
    __slots__ = ("tenant_id", "team_id", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    team_id: str
    limit: _money_pb2.Cost
    def __init__(self, tenant_id: _Optional[str] = ..., team_id: _Optional[str] = ..., limit: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ...) -> None: ...

class SetBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class GetCostReportRequest(_message.Message):
    __slots__ = ("tenant_id", "start_time", "end_time", "group_by")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    group_by: _containers.RepeatedScalarFieldContainer[GroupBy]
    def __init__(self, tenant_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Iterable[_Union[GroupBy, str]]] = ...) -> None: ...

class CostReportRow(_message.Message):
    __slots__ = ("keys", "requests", "input_tokens", "output_tokens", "cost")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    requests: int
    input_tokens: int
    output_tokens: int
    cost: _money_pb2.Cost
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., requests: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost: _Optional[_Union[_money_pb2.Cost, _Mapping]] = ...) -> None: ...

class GetCostReportResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[CostReportRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[CostReportRow, _Mapping]]] = ...) -> None: ...

class LedgerOperation(_message.Message):
    __slots__ = ("operation_id", "reserve", "commit", "release")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    operation_id: int
    reserve: ReserveRequest
    commit: CommitRequest
    release: ReleaseRequest
    def __init__(self, operation_id: _Optional[int] = ..., reserve: _Optional[_Union[ReserveRequest, _Mapping]] = ..., commit: _Optional[_Union[CommitRequest, _Mapping]] = ..., release: _Optional[_Union[ReleaseRequest, _Mapping]] = ...) -> None: ...

class LedgerOperationResult(_message.Message):
    __slots__ = ("operation_id", "reserve", "commit", "release", "error")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVE_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    operation_id: int
    reserve: ReserveResponse
    commit: CommitResponse
    release: ReleaseResponse
    error: bytes
    def __init__(self, operation_id: _Optional[int] = ..., reserve: _Optional[_Union[ReserveResponse, _Mapping]] = ..., commit: _Optional[_Union[CommitResponse, _Mapping]] = ..., release: _Optional[_Union[ReleaseResponse, _Mapping]] = ..., error: _Optional[bytes] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("operations",)
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[LedgerOperation]
    def __init__(self, operations: _Optional[_Iterable[_Union[LedgerOperation, _Mapping]]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[LedgerOperationResult]
    def __init__(self, results: _Optional[_Iterable[_Union[LedgerOperationResult, _Mapping]]] = ...) -> None: ...
