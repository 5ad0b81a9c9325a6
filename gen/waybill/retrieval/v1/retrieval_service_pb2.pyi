import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from waybill.common.v1 import customer_pb2 as _customer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_LEXICAL: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID_RERANK: _ClassVar[SearchMode]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_LEXICAL: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_HYBRID: SearchMode
SEARCH_MODE_HYBRID_RERANK: SearchMode

class SearchFilters(_message.Message):
    __slots__ = ("region", "product_category", "policy_version", "effective_time")
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    region: str
    product_category: str
    policy_version: str
    effective_time: _timestamp_pb2.Timestamp
    def __init__(self, region: _Optional[str] = ..., product_category: _Optional[str] = ..., policy_version: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("tenant_id", "query", "filters", "top_k", "mode")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    query: str
    filters: SearchFilters
    top_k: int
    mode: SearchMode
    def __init__(self, tenant_id: _Optional[str] = ..., query: _Optional[str] = ..., filters: _Optional[_Union[SearchFilters, _Mapping]] = ..., top_k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ...) -> None: ...

class StageScores(_message.Message):
    __slots__ = ("lexical_score", "lexical_rank", "dense_score", "dense_rank", "fused_score", "rerank_score")
    LEXICAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_RANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    DENSE_RANK_FIELD_NUMBER: _ClassVar[int]
    FUSED_SCORE_FIELD_NUMBER: _ClassVar[int]
    RERANK_SCORE_FIELD_NUMBER: _ClassVar[int]
    lexical_score: float
    lexical_rank: int
    dense_score: float
    dense_rank: int
    fused_score: float
    rerank_score: float
    def __init__(self, lexical_score: _Optional[float] = ..., lexical_rank: _Optional[int] = ..., dense_score: _Optional[float] = ..., dense_rank: _Optional[int] = ..., fused_score: _Optional[float] = ..., rerank_score: _Optional[float] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("chunk_id", "doc_id", "section", "text", "score", "region", "product_category", "policy_version", "effective_time", "scores", "title", "source_doc", "expire_time")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DOC_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    doc_id: str
    section: str
    text: str
    score: float
    region: str
    product_category: str
    policy_version: str
    effective_time: _timestamp_pb2.Timestamp
    scores: StageScores
    title: str
    source_doc: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., section: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ..., policy_version: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scores: _Optional[_Union[StageScores, _Mapping]] = ..., title: _Optional[str] = ..., source_doc: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("chunks", "index_version")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    index_version: str
    def __init__(self, chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ..., index_version: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("doc_id", "title", "body", "region", "product_category", "policy_version", "effective_time", "source_doc", "expire_time", "return_rules")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DOC_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    RETURN_RULES_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    title: str
    body: str
    region: str
    product_category: str
    policy_version: str
    effective_time: _timestamp_pb2.Timestamp
    source_doc: str
    expire_time: _timestamp_pb2.Timestamp
    return_rules: ReturnRules
    def __init__(self, doc_id: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ..., policy_version: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_doc: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., return_rules: _Optional[_Union[ReturnRules, _Mapping]] = ...) -> None: ...

class ReturnRules(_message.Message):
    __slots__ = ("window_days", "tier_extra_days", "sku_days", "non_returnable_skus")
    class TierExtraDaysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SkuDaysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    TIER_EXTRA_DAYS_FIELD_NUMBER: _ClassVar[int]
    SKU_DAYS_FIELD_NUMBER: _ClassVar[int]
    NON_RETURNABLE_SKUS_FIELD_NUMBER: _ClassVar[int]
    window_days: int
    tier_extra_days: _containers.ScalarMap[str, int]
    sku_days: _containers.ScalarMap[str, int]
    non_returnable_skus: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, window_days: _Optional[int] = ..., tier_extra_days: _Optional[_Mapping[str, int]] = ..., sku_days: _Optional[_Mapping[str, int]] = ..., non_returnable_skus: _Optional[_Iterable[str]] = ...) -> None: ...

class GetReturnWindowRequest(_message.Message):
    __slots__ = ("tenant_id", "sku", "tier", "region", "product_category", "as_of_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    sku: str
    tier: _customer_pb2.CustomerTier
    region: str
    product_category: str
    as_of_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., sku: _Optional[str] = ..., tier: _Optional[_Union[_customer_pb2.CustomerTier, str]] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ..., as_of_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetReturnWindowResponse(_message.Message):
    __slots__ = ("returnable", "days", "base_days", "tier_extra_days", "sku_rule", "doc_id", "chunk_id", "policy_version", "index_version", "chunks")
    RETURNABLE_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    BASE_DAYS_FIELD_NUMBER: _ClassVar[int]
    TIER_EXTRA_DAYS_FIELD_NUMBER: _ClassVar[int]
    SKU_RULE_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    returnable: bool
    days: int
    base_days: int
    tier_extra_days: int
    sku_rule: bool
    doc_id: str
    chunk_id: str
    policy_version: str
    index_version: str
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    def __init__(self, returnable: _Optional[bool] = ..., days: _Optional[int] = ..., base_days: _Optional[int] = ..., tier_extra_days: _Optional[int] = ..., sku_rule: _Optional[bool] = ..., doc_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., policy_version: _Optional[str] = ..., index_version: _Optional[str] = ..., chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ...) -> None: ...

class IngestDocumentsRequest(_message.Message):
    __slots__ = ("tenant_id", "documents")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, tenant_id: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class IngestDocumentsResponse(_message.Message):
    __slots__ = ("chunks_indexed", "chunks_unchanged", "index_version", "chunks_removed", "documents_quarantined", "chunks_flagged")
    CHUNKS_INDEXED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FLAGGED_FIELD_NUMBER: _ClassVar[int]
    chunks_indexed: int
    chunks_unchanged: int
    index_version: str
    chunks_removed: int
    documents_quarantined: _containers.RepeatedScalarFieldContainer[str]
    chunks_flagged: int
    def __init__(self, chunks_indexed: _Optional[int] = ..., chunks_unchanged: _Optional[int] = ..., index_version: _Optional[str] = ..., chunks_removed: _Optional[int] = ..., documents_quarantined: _Optional[_Iterable[str]] = ..., chunks_flagged: _Optional[int] = ...) -> None: ...

class DeleteDocumentRequest(_message.Message):
    __slots__ = ("tenant_id", "doc_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    doc_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("chunks_deleted", "index_version")
    CHUNKS_DELETED_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    chunks_deleted: int
    index_version: str
    def __init__(self, chunks_deleted: _Optional[int] = ..., index_version: _Optional[str] = ...) -> None: ...
