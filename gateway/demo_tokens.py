"""Demo bearer tokens of the embedded default: a key pair the launcher makes, the
gateway trusts (its public half, as a JWKS file) and the REST edge signs with.

Only the launcher creates the pair (under the run directory, private key mode
0600) and only an edge on loopback is given the private key, so a demo token
can be minted only on this machine. Tokens live 15 minutes and name one
customer (``sub``) of one tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.key_store import write_private
from runtime.principal import CUSTOMER_ROLE

DEMO_ISSUER = "urn:waybill:embedded-demo"
DEMO_AUDIENCE = "waybill-gateway"
DEMO_TEAM = "support"
DEMO_TOKEN_TTL_S = 900
ALGORITHM = "EdDSA"
PRIVATE_KEY_FILE = "demo-token-key.pem"
JWKS_FILE = "demo-token-jwks.json"


@dataclass(frozen=True, slots=True)
class DemoKeyFiles:
    """Where a run keeps its demo token keys."""

    private_key: Path
    """PEM (PKCS#8) Ed25519 private key, mode 0600: the edge's only."""
    jwks: Path
    """The public key as a JWKS document: the gateway's ``WAYBILL_JWT_JWKS_FILE``."""


def _kid(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def ensure_key_pair(directory: Path) -> DemoKeyFiles:
    """The run's demo key pair, made on first use."""
    files = DemoKeyFiles(directory / PRIVATE_KEY_FILE, directory / JWKS_FILE)
    if files.private_key.exists() and files.jwks.exists():
        return files
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(public_raw).rstrip(b"=").decode(),
        "kid": _kid(public_raw),
        "alg": ALGORITHM,
        "use": "sig",
    }
    write_private(files.private_key, pem.decode())
    write_private(files.jwks, json.dumps({"keys": [jwk]}, indent=2) + "\n")
    return files


@dataclass(frozen=True, slots=True)
class DemoToken:
    """A token just minted."""

    token: str
    expires_at: float
    """Unix time of ``exp``."""


class DemoTokenSigner:
    """Mints short-lived end-user tokens with the run's demo private key."""

    def __init__(
        self,
        private_key_pem: bytes,
        *,
        issuer: str = DEMO_ISSUER,
        audience: str = DEMO_AUDIENCE,
        ttl_s: int = DEMO_TOKEN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the demo token key must be an Ed25519 private key")
        self._key = key
        self._kid = _kid(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )
        self._issuer = issuer
        self._audience = audience
        self.ttl_s = ttl_s
        self._clock = clock

    @classmethod
    def load(cls, path: Path, *, issuer: str, audience: str) -> DemoTokenSigner:
        """A signer with the key at ``path`` (OSError/ValueError when unusable)."""
        return cls(path.read_bytes(), issuer=issuer, audience=audience)

    def issue(self, *, tenant_id: str, user_id: str, team_id: str = DEMO_TEAM) -> DemoToken:
        """A token that acts as ``user_id`` of ``tenant_id`` for ``ttl_s`` seconds."""
        now = int(self._clock())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "tenant": tenant_id,
            "team": team_id,
            "role": CUSTOMER_ROLE,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})
        return DemoToken(token, float(now + self.ttl_s))
