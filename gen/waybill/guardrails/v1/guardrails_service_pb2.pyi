from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TextOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEXT_ORIGIN_UNSPECIFIED: _ClassVar[TextOrigin]
    TEXT_ORIGIN_RETRIEVED: _ClassVar[TextOrigin]
    TEXT_ORIGIN_TOOL_RESULT: _ClassVar[TextOrigin]
    TEXT_ORIGIN_ORDER_NOTE: _ClassVar[TextOrigin]
    TEXT_ORIGIN_DOCUMENT: _ClassVar[TextOrigin]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_ALLOW: _ClassVar[Verdict]
    VERDICT_BLOCK: _ClassVar[Verdict]
TEXT_ORIGIN_UNSPECIFIED: TextOrigin
TEXT_ORIGIN_RETRIEVED: TextOrigin
TEXT_ORIGIN_TOOL_RESULT: TextOrigin
TEXT_ORIGIN_ORDER_NOTE: TextOrigin
TEXT_ORIGIN_DOCUMENT: TextOrigin
VERDICT_UNSPECIFIED: Verdict
VERDICT_ALLOW: Verdict
VERDICT_BLOCK: Verdict

class ScreenTextsRequest(_message.Message):
    __slots__ = ("tenant_id", "origin", "texts")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    origin: TextOrigin
    texts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., origin: _Optional[_Union[TextOrigin, str]] = ..., texts: _Optional[_Iterable[str]] = ...) -> None: ...

class ScreenedText(_message.Message):
    __slots__ = ("score", "flagged")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    score: float
    flagged: bool
    def __init__(self, score: _Optional[float] = ..., flagged: _Optional[bool] = ...) -> None: ...

class ScreenTextsResponse(_message.Message):
    __slots__ = ("results", "threshold")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScreenedText]
    threshold: float
    def __init__(self, results: _Optional[_Iterable[_Union[ScreenedText, _Mapping]]] = ..., threshold: _Optional[float] = ...) -> None: ...

class PiiFinding(_message.Message):
    __slots__ = ("entity_type", "start", "end", "placeholder")
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDER_FIELD_NUMBER: _ClassVar[int]
    entity_type: str
    start: int
    end: int
    placeholder: str
    def __init__(self, entity_type: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., placeholder: _Optional[str] = ...) -> None: ...

class CheckInputRequest(_message.Message):
    __slots__ = ("tenant_id", "session_id", "text")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    session_id: str
    text: str
    def __init__(self, tenant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CheckInputResponse(_message.Message):
    __slots__ = ("verdict", "redacted_text", "findings", "injection_score", "block_reason", "checks", "canary")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REDACTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    INJECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_REASON_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    redacted_text: str
    findings: _containers.RepeatedCompositeFieldContainer[PiiFinding]
    injection_score: float
    block_reason: str
    checks: _containers.RepeatedScalarFieldContainer[str]
    canary: str
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., redacted_text: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[PiiFinding, _Mapping]]] = ..., injection_score: _Optional[float] = ..., block_reason: _Optional[str] = ..., checks: _Optional[_Iterable[str]] = ..., canary: _Optional[str] = ...) -> None: ...

class GroundingSource(_message.Message):
    __slots__ = ("source_id", "text")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    text: str
    def __init__(self, source_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CheckOutputRequest(_message.Message):
    __slots__ = ("tenant_id", "session_id", "text", "sources", "require_grounding")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_GROUNDING_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    session_id: str
    text: str
    sources: _containers.RepeatedCompositeFieldContainer[GroundingSource]
    require_grounding: bool
    def __init__(self, tenant_id: _Optional[str] = ..., session_id: _Optional[str] = ..., text: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[GroundingSource, _Mapping]]] = ..., require_grounding: _Optional[bool] = ...) -> None: ...

class CheckOutputResponse(_message.Message):
    __slots__ = ("verdict", "redacted_text", "findings", "grounded", "grounding_score", "block_reason", "checks")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REDACTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    GROUNDED_FIELD_NUMBER: _ClassVar[int]
    GROUNDING_SCORE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_REASON_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    verdict: Verdict
    redacted_text: str
    findings: _containers.RepeatedCompositeFieldContainer[PiiFinding]
    grounded: bool
    grounding_score: float
    block_reason: str
    checks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, verdict: _Optional[_Union[Verdict, str]] = ..., redacted_text: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[PiiFinding, _Mapping]]] = ..., grounded: _Optional[bool] = ..., grounding_score: _Optional[float] = ..., block_reason: _Optional[str] = ..., checks: _Optional[_Iterable[str]] = ...) -> None: ...

class RedactRequest(_message.Message):
    __slots__ = ("text", "salt")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    text: str
    salt: str
    def __init__(self, text: _Optional[str] = ..., salt: _Optional[str] = ...) -> None: ...

class RedactResponse(_message.Message):
    __slots__ = ("redacted_text", "findings")
    REDACTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    redacted_text: str
    findings: _containers.RepeatedCompositeFieldContainer[PiiFinding]
    def __init__(self, redacted_text: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[PiiFinding, _Mapping]]] = ...) -> None: ...
