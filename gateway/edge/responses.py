"""JSON responses: the proto3 JSON of a message, or the error body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from starlette.responses import Response

from gateway.edge import json_mapping
from gateway.edge.errors import HttpError
from runtime.context import REQUEST_ID_HEADER

JSON_TYPE = "application/json"


def json_response(
    content: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``content`` serialized compactly."""
    body = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=JSON_TYPE)


def message_response(message: Message, *, rid: str) -> Response:
    """200 with a gateway response as proto3 JSON."""
    return json_response(json_mapping.to_dict(message), headers={REQUEST_ID_HEADER: rid})


def error_response(error: HttpError, *, rid: str | None = None) -> Response:
    """The error body with its status and headers."""
    headers = dict(error.headers)
    if rid:
        headers[REQUEST_ID_HEADER] = rid
    return Response(
        error.json_bytes(), status_code=error.http_status, headers=headers, media_type=JSON_TYPE
    )
