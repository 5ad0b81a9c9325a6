"""Caller authentication: API keys bound to a tenant (bearer JWTs are not accepted yet)."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from runtime.credentials import ApiKey, Principal, digest
from runtime.errors import Unauthenticated

API_KEY_HEADER = "x-api-key"


class Authenticator:
    """Maps ``x-api-key`` metadata to a principal; keeps only key digests."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_digest = {digest(k.api_key): k.principal for k in keys}

    def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller, or UNAUTHENTICATED."""
        presented = ""
        for key, value in context.invocation_metadata() or ():
            if key == API_KEY_HEADER and isinstance(value, str):
                presented = value
                break
        if not presented:
            raise Unauthenticated(
                f"missing credential: send metadata {API_KEY_HEADER!r}", reason="MISSING_CREDENTIAL"
            )
        principal = self._by_digest.get(digest(presented))
        if principal is None:
            raise Unauthenticated("unknown API key", reason="INVALID_CREDENTIAL")
        return principal
