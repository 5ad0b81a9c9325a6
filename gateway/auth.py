"""Caller authentication: an API key (``x-api-key``) or an end user's bearer token
(``authorization: Bearer <jwt>``); a bearer token wins when both are sent."""

from __future__ import annotations

import grpc

from gateway.key_ring import KeyRing, invalid_credential
from gateway.tokens import TokenVerifier
from runtime.errors import Unauthenticated
from runtime.principal import Principal

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
_BEARER = "bearer"


class Authenticator:
    """Maps call metadata to a principal."""

    def __init__(self, keys: KeyRing, tokens: TokenVerifier | None = None) -> None:
        self._keys = keys
        self._tokens = tokens

    def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller, or UNAUTHENTICATED (MISSING_CREDENTIAL, INVALID_CREDENTIAL,
        EXPIRED_CREDENTIAL, REVOKED_CREDENTIAL)."""
        authorization = api_key = None
        for key, value in context.invocation_metadata() or ():
            if key == AUTHORIZATION_HEADER and authorization is None:
                authorization = value if isinstance(value, str) else ""
            elif key == API_KEY_HEADER and api_key is None:
                api_key = value if isinstance(value, str) else ""
        return self.principal_of(authorization=authorization, api_key=api_key)

    def principal_of(
        self, *, authorization: str | None, api_key: str | None, bearer_keys: bool = False
    ) -> Principal:
        """The caller of an ``authorization`` header (``Bearer <jwt>``) or an API key.
        With ``bearer_keys`` (OpenAI clients send their key so) a bearer credential that
        is not a JWT is taken as an API key."""
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            token = token.strip()
            if bearer_keys and scheme.lower() == _BEARER and token and token.count(".") != 2:
                return self._keys.principal(token)
            if scheme.lower() != _BEARER or not token or self._tokens is None:
                # Also when no token issuer is configured: the same answer as a bad token.
                raise invalid_credential()
            return self._tokens.principal(token)
        if api_key:
            return self._keys.principal(api_key)
        raise Unauthenticated(
            f"missing credential: send metadata {API_KEY_HEADER!r}"
            f" or {AUTHORIZATION_HEADER!r} (Bearer)",
            reason="MISSING_CREDENTIAL",
        )
