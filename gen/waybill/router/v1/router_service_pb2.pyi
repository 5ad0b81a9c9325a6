from buf.validate import validate_pb2 as _validate_pb2
from waybill.common.v1 import intent_pb2 as _intent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_UNSPECIFIED: _ClassVar[Method]
    METHOD_KEYWORD_PLACEHOLDER: _ClassVar[Method]
    METHOD_EMBEDDING: _ClassVar[Method]
    METHOD_LLM_FALLBACK: _ClassVar[Method]
METHOD_UNSPECIFIED: Method
METHOD_KEYWORD_PLACEHOLDER: Method
METHOD_EMBEDDING: Method
METHOD_LLM_FALLBACK: Method

class ClassifyRequest(_message.Message):
    __slots__ = ("tenant_id", "text", "previous_intent", "embedding_for")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_INTENT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    text: str
    previous_intent: _intent_pb2.Intent
    embedding_for: _containers.RepeatedScalarFieldContainer[_intent_pb2.Worker]
    def __init__(self, tenant_id: _Optional[str] = ..., text: _Optional[str] = ..., previous_intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., embedding_for: _Optional[_Iterable[_Union[_intent_pb2.Worker, str]]] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("model_version", "values")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model_version: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class IntentScore(_message.Message):
    __slots__ = ("intent", "confidence")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    intent: _intent_pb2.Intent
    confidence: float
    def __init__(self, intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., confidence: _Optional[float] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("intent", "confidence", "worker", "alternatives", "low_confidence", "clarifying_question", "method", "classifier_version", "embedding")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    LOW_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CLARIFYING_QUESTION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    intent: _intent_pb2.Intent
    confidence: float
    worker: _intent_pb2.Worker
    alternatives: _containers.RepeatedCompositeFieldContainer[IntentScore]
    low_confidence: bool
    clarifying_question: str
    method: Method
    classifier_version: str
    embedding: Embedding
    def __init__(self, intent: _Optional[_Union[_intent_pb2.Intent, str]] = ..., confidence: _Optional[float] = ..., worker: _Optional[_Union[_intent_pb2.Worker, str]] = ..., alternatives: _Optional[_Iterable[_Union[IntentScore, _Mapping]]] = ..., low_confidence: _Optional[bool] = ..., clarifying_question: _Optional[str] = ..., method: _Optional[_Union[Method, str]] = ..., classifier_version: _Optional[str] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ...) -> None: ...

class Exemplar(_message.Message):
    __slots__ = ("text", "intent")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    text: str
    intent: _intent_pb2.Intent
    def __init__(self, text: _Optional[str] = ..., intent: _Optional[_Union[_intent_pb2.Intent, str]] = ...) -> None: ...

class AddExemplarsRequest(_message.Message):
    __slots__ = ("exemplars", "request_id", "tenant_id")
    EXEMPLARS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    exemplars: _containers.RepeatedCompositeFieldContainer[Exemplar]
    request_id: str
    tenant_id: str
    def __init__(self, exemplars: _Optional[_Iterable[_Union[Exemplar, _Mapping]]] = ..., request_id: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class AddExemplarsResponse(_message.Message):
    __slots__ = ("classifier_version", "exemplar_count")
    CLASSIFIER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    classifier_version: str
    exemplar_count: int
    def __init__(self, classifier_version: _Optional[str] = ..., exemplar_count: _Optional[int] = ...) -> None: ...

class GetClassifierInfoRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetClassifierInfoResponse(_message.Message):
    __slots__ = ("classifier_version", "method", "exemplar_count", "confidence_threshold", "model_version", "added_exemplar_count")
    CLASSIFIER_VERSION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    EXEMPLAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADDED_EXEMPLAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    classifier_version: str
    method: Method
    exemplar_count: int
    confidence_threshold: float
    model_version: str
    added_exemplar_count: int
    def __init__(self, classifier_version: _Optional[str] = ..., method: _Optional[_Union[Method, str]] = ..., exemplar_count: _Optional[int] = ..., confidence_threshold: _Optional[float] = ..., model_version: _Optional[str] = ..., added_exemplar_count: _Optional[int] = ...) -> None: ...
