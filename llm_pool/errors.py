"""Backend failures and how the pool treats each kind.

A backend raises ``BackendError``; its ``kind`` decides whether the pool
retries, whether the circuit breaker counts it, and whether the chain moves
on. Only provider failures count against a breaker: a rate limit, a request
the model cannot take, and our own deadline or cancellation say nothing about
the provider's health.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """Who or what a failure is about."""

    PROVIDER = "provider"
    """The serving side failed (down, 5xx, model not ready, broken stream): retry, count."""
    RATE_LIMIT = "rate_limit"
    """RESOURCE_EXHAUSTED / HTTP 429: never retried, not counted, next link."""
    REQUEST = "request"
    """The request does not fit this backend (bad input, unknown template): next link."""
    DEADLINE = "deadline"
    """The caller's deadline ran out: not counted, nothing more is tried."""


class BackendError(Exception):
    """A generation attempt failed; carries what it consumed before failing."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        reason: str,
        kind: ErrorKind,
        input_tokens: int = 0,
        output_tokens: int = 0,
        usage_source: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        """gRPC status code name the failure maps to (``UNAVAILABLE``)."""
        self.reason = reason
        """Machine-readable reason (``TRITON_UNAVAILABLE``)."""
        self.kind = kind
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.usage_source = usage_source

    @property
    def counts_for_breaker(self) -> bool:
        """Only provider failures open a breaker."""
        return self.kind is ErrorKind.PROVIDER

    @property
    def retryable(self) -> bool:
        """Only provider failures are worth another attempt on the same backend."""
        return self.kind is ErrorKind.PROVIDER


def kind_for_code(code: str) -> ErrorKind:
    """The kind of a failure reported as a gRPC status code name."""
    if code == "RESOURCE_EXHAUSTED":
        return ErrorKind.RATE_LIMIT
    if code in {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "NOT_FOUND"}:
        return ErrorKind.REQUEST
    # Everything else, CANCELLED included (a stream the server cancelled on its
    # own; our cancellation is a CancelledError, never a BackendError).
    return ErrorKind.PROVIDER
