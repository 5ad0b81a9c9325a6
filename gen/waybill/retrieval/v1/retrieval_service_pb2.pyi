import datetime

from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("tenant_id", "query", "filters", "top_k")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    query: str
    filters: SearchFilters
    top_k: int
    def __init__(self, tenant_id: _Optional[str] = ..., query: _Optional[str] = ..., filters: _Optional[_Union[SearchFilters, _Mapping]] = ..., top_k: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("chunk_id", "doc_id", "section", "text", "score", "region", "product_category", "policy_version", "effective_time")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    doc_id: str
    section: str
    text: str
    score: float
    region: str
    product_category: str
    policy_version: str
    effective_time: _timestamp_pb2.Timestamp
    def __init__(self, chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., section: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ..., policy_version: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("chunks", "index_version")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    index_version: str
    def __init__(self, chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ..., index_version: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("doc_id", "title", "body", "region", "product_category", "policy_version", "effective_time")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    title: str
    body: str
    region: str
    product_category: str
    policy_version: str
    effective_time: _timestamp_pb2.Timestamp
    def __init__(self, doc_id: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., region: _Optional[str] = ..., product_category: _Optional[str] = ..., policy_version: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IngestDocumentsRequest(_message.Message):
    __slots__ = ("tenant_id", "documents")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, tenant_id: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class IngestDocumentsResponse(_message.Message):
    __slots__ = ("chunks_indexed", "chunks_unchanged", "index_version")
    CHUNKS_INDEXED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    chunks_indexed: int
    chunks_unchanged: int
    index_version: str
    def __init__(self, chunks_indexed: _Optional[int] = ..., chunks_unchanged: _Optional[int] = ..., index_version: _Optional[str] = ...) -> None: ...

class DeleteDocumentRequest(_message.Message):
    __slots__ = ("tenant_id", "doc_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    doc_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("chunks_deleted",)
    CHUNKS_DELETED_FIELD_NUMBER: _ClassVar[int]
    chunks_deleted: int
    def __init__(self, chunks_deleted: _Optional[int] = ...) -> None: ...
