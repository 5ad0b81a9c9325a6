"""Reading a JSON request body: content type first, then a hard size cap.

The cap is enforced while reading, so a body without (or with a false)
Content-Length cannot make the edge buffer more than ``max_bytes``.
"""

from __future__ import annotations

import grpc
from starlette.requests import ClientDisconnect, Request

from gateway.edge.errors import EdgeError

JSON_MEDIA_TYPE = "application/json"


class Disconnected(Exception):
    """The client went away while sending its body."""


def check_json_content_type(request: Request) -> None:
    """415 unless the body is declared ``application/json`` (UTF-8, the JSON default)."""
    declared = request.headers.get("content-type", "")
    media_type, _, params = declared.partition(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        shown = media_type.strip() or "none"
        raise EdgeError(
            415,
            grpc.StatusCode.INVALID_ARGUMENT,
            f"send the body as {JSON_MEDIA_TYPE} (got {shown})",
            reason="UNSUPPORTED_MEDIA_TYPE",
            metadata={"expected": JSON_MEDIA_TYPE},
        )
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            raise EdgeError(
                415,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"JSON bodies must be UTF-8 (got charset {value.strip()})",
                reason="UNSUPPORTED_MEDIA_TYPE",
                metadata={"expected": f"{JSON_MEDIA_TYPE}; charset=utf-8"},
            )


def _too_large(max_bytes: int) -> EdgeError:
    return EdgeError(
        413,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the body is larger than {max_bytes} bytes",
        reason="BODY_TOO_LARGE",
        metadata={"max_bytes": str(max_bytes)},
    )


async def read_json_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw body of a JSON request, at most ``max_bytes`` of it."""
    check_json_content_type(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        raise Disconnected from None
    return b"".join(chunks)
