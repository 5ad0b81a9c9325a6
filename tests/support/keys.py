"""Test keys: a launcher-style pair of files, and keys and tokens made in memory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from gateway import demo_tokens, local_keys
from gateway.key_ring import KeyRing
from gateway.key_store import KeyRecord, digest
from gateway.tokens import TokenSettings, TokenVerifier
from runtime.credentials import ApiKey


def clients_file(path: Path, tenants: Sequence[str]) -> list[ApiKey]:
    """The local clients' file at ``path`` (and its hashed store beside it), as the
    launcher writes them at first start."""
    return local_keys.ensure(store=path.with_name("api_keys.json"), clients=path, tenants=tenants)


def fixed_key(number: int) -> tuple[str, str]:
    """A well-formed ``(key id, key)`` that is the same in every run."""
    key_id = f"{number:016x}"
    return key_id, f"wb_{key_id}_{'k' * 39}{number:04d}"


def record(
    key: tuple[str, str], tenant_id: str, *, role: str = "service", **fields: float | None
) -> KeyRecord:
    """The store's record of a fixed key."""
    key_id, api_key = key
    return KeyRecord(
        key_id=key_id,
        tenant_id=tenant_id,
        team_id="support",
        role=role,
        sha256=digest(api_key),
        created_at=fields.pop("created_at", None) or time.time(),
        **fields,  # type: ignore[arg-type]
    )


def ring(*records: KeyRecord) -> KeyRing:
    """A key ring of ``records`` that reads no file."""
    return KeyRing(records)


def token_issuer(directory: Path) -> tuple[demo_tokens.DemoTokenSigner, TokenVerifier]:
    """A demo key pair in ``directory``: a signer and a verifier that trusts it."""
    files = demo_tokens.ensure_key_pair(directory)
    signer = demo_tokens.DemoTokenSigner.load(
        files.private_key, issuer=demo_tokens.DEMO_ISSUER, audience=demo_tokens.DEMO_AUDIENCE
    )
    verifier = TokenVerifier.load(
        TokenSettings(
            jwks_file=files.jwks,
            issuer=demo_tokens.DEMO_ISSUER,
            audience=demo_tokens.DEMO_AUDIENCE,
        )
    )
    return signer, verifier
