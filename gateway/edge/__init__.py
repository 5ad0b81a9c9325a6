"""The REST edge: a thin HTTP/JSON and Server-Sent Events front for the gateway's gRPC API.

Browsers cannot speak gRPC. The edge translates each HTTP request into one
gateway call (JSON through the proto3 JSON mapping, so the contract stays the
single source), maps gRPC status to HTTP status, streams turns as SSE, and
serves the demo chat page. It holds no business logic: the gateway decides.
"""
