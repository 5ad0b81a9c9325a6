"""End users' bearer tokens: JWTs signed by an identity provider the gateway trusts.

Only asymmetric algorithms are accepted (RS256, ES256, EdDSA): ``alg: none``
and every HS* algorithm are refused before any key is looked at, so a token
"signed" with the public key as an HMAC secret cannot pass. The header's
``kid`` picks the verification key from a JWKS file (a set of one key may be
used without ``kid``), and the key's own algorithm must be the header's.

Claims: ``exp`` required (``nbf`` honoured when present, both with a small
leeway), ``iss`` and ``aud`` must be the configured ones, ``sub`` is the
customer the token is bound to, ``tenant`` and ``team`` say whose customer and
who pays, ``role`` must be ``customer``. Times are checked against the
injected clock, the same one the cache of verified tokens uses.

Every failure answers UNAUTHENTICATED with INVALID_CREDENTIAL (EXPIRED_CREDENTIAL
for a genuine token past ``exp``): nothing says which check failed.

The JWKS file is read at start and again when it changes (looked at, like
the API key store, at most once per refresh interval), so a rotated signing
key needs no restart; a change empties the cache of verified tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from gateway.key_ring import expired_credential, invalid_credential
from runtime.bounded_cache import BoundedCache
from runtime.principal import CUSTOMER_ROLE, Principal

log = logging.getLogger("waybill.gateway.tokens")

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
"""Asymmetric signatures only."""
MAX_TOKEN_CHARS = 8192
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
_USER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
"""The contract's rule for a request's ``user_id``."""
_CACHE_TTL_S = 300.0
"""Longest a verified token is kept (never past its own expiry)."""


class JwksError(ValueError):
    """The JWKS file cannot be used."""


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """Which tokens the gateway trusts."""

    jwks_file: Path
    """Public keys of the token issuer, as a JWKS document (``WAYBILL_JWT_JWKS_FILE``)."""
    issuer: str
    """Required ``iss`` (``WAYBILL_JWT_ISSUER``)."""
    audience: str
    """Required ``aud`` (``WAYBILL_JWT_AUDIENCE``)."""
    leeway_s: float = 30.0
    """Clock skew allowed on ``exp`` and ``nbf`` (``WAYBILL_JWT_LEEWAY_S``)."""


def parse_jwks(text: str, *, source: str) -> dict[str, jwt.PyJWK]:
    """Signature keys by ``kid`` ("" for one key without an id); JwksError if unusable."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise JwksError(f"{source}: not JSON ({exc})") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise JwksError(f"{source}: expected a JWKS document {{'keys': [...]}} with keys")
    keys: dict[str, jwt.PyJWK] = {}
    for number, entry in enumerate(entries):
        where = f"{source}: keys[{number}]"
        if not isinstance(entry, dict):
            raise JwksError(f"{where} is not an object")
        if "d" in entry or entry.get("kty") == "oct":
            raise JwksError(f"{where} holds private or symmetric key material")
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            raise JwksError(f"{where}: {exc}") from None
        if key.algorithm_name not in ALLOWED_ALGORITHMS:
            raise JwksError(f"{where}: algorithm {key.algorithm_name} is not allowed")
        kid = str(entry.get("kid", ""))
        if kid in keys:
            raise JwksError(f"{where}: kid {kid!r} appears twice")
        keys[kid] = key
    if not keys:
        raise JwksError(f"{source}: no signature keys")
    return keys


class TokenVerifier:
    """Bearer token -> the end user's principal."""

    def __init__(
        self,
        settings: TokenSettings,
        *,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        cache_entries: int = 10_000,
    ) -> None:
        self._settings = settings
        self._refresh_s = refresh_s
        self._clock = clock
        self._monotonic = monotonic
        self._cache_entries = cache_entries
        self._keys: dict[str, jwt.PyJWK] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._cache = self._new_cache()

    @classmethod
    def load(cls, settings: TokenSettings, **options: Any) -> TokenVerifier:
        """A verifier with the JWKS read now; OSError or JwksError when it cannot be used."""
        verifier = cls(settings, **options)
        verifier._reload()
        return verifier

    def _new_cache(self) -> BoundedCache[str, tuple[float, Principal]]:
        return BoundedCache(ttl_s=_CACHE_TTL_S, entries=self._cache_entries, clock=self._monotonic)

    def _reload(self) -> None:
        path = self._settings.jwks_file
        info = path.stat()
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._keys = parse_jwks(path.read_text(encoding="utf-8"), source=str(path))
            self._stamp = stamp
            self._cache = self._new_cache()
            log.info("token keys loaded", extra={"keys": len(self._keys)})

    def refresh(self) -> None:
        """Read the JWKS again if it changed and the refresh interval has passed."""
        now = self._monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._refresh_s
        try:
            self._reload()
        except (OSError, JwksError) as exc:
            log.warning("JWKS unreadable; keeping the keys read last: %s", exc)

    def principal(self, token: str) -> Principal:
        """The principal of a valid token; UNAUTHENTICATED otherwise."""
        self.refresh()
        if len(token) > MAX_TOKEN_CHARS:
            raise invalid_credential()
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(fingerprint)
        now = self._clock()
        if cached is not None:
            valid_until, principal = cached
            if now < valid_until:
                return principal
        claims = self._verified_claims(token)
        principal, valid_until = self._check(claims, now)
        self._cache.put(fingerprint, (valid_until, principal))
        return principal

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_credential() from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise invalid_credential()
        kid = header.get("kid")
        key: jwt.PyJWK | None = None
        if kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        elif isinstance(kid, str):
            key = self._keys.get(kid)
        if key is None or key.algorithm_name != alg:
            raise invalid_credential()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    # Times are checked below, against the injected clock.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise invalid_credential() from None
        return claims

    def _check(self, claims: dict[str, Any], now: float) -> tuple[Principal, float]:
        leeway = self._settings.leeway_s
        exp, nbf = _time_claim(claims, "exp"), _time_claim(claims, "nbf")
        if exp is None or ("nbf" in claims and nbf is None):
            raise invalid_credential()
        if nbf is not None and now + leeway < nbf:
            raise invalid_credential()
        if now >= exp + leeway:
            raise expired_credential()
        sub, tenant, team, role = (claims.get(k) for k in ("sub", "tenant", "team", "role"))
        if not (
            isinstance(sub, str)
            and _USER_ID.match(sub)
            and isinstance(tenant, str)
            and _ID.match(tenant)
            and isinstance(team, str)
            and _ID.match(team)
            and role == CUSTOMER_ROLE
        ):
            raise invalid_credential()
        principal = Principal(tenant, team, CUSTOMER_ROLE, principal_id=f"user:{sub}", user_id=sub)
        return principal, exp + leeway


def _time_claim(claims: dict[str, Any], name: str) -> float | None:
    """A NumericDate claim as a float; None when absent or not a finite number."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
