"""Bearer token verification: only tokens of the trusted issuer, for this audience,
signed with an allowed asymmetric algorithm by a key of the JWKS, inside their time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.tokens import JwksError, TokenSettings, TokenVerifier, parse_jwks
from runtime.errors import Unauthenticated
from tests.gateway.clock import FakeClock

ISSUER = "https://id.example.test/"
AUDIENCE = "waybill-gateway"
NOW = 1_900_000_000.0


def _private(alg: str) -> Any:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _jwk(alg: str, private: Any, kid: str) -> dict[str, Any]:
    algorithm: Any = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(private.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def keys() -> dict[str, Any]:
    return {alg: _private(alg) for alg in ("RS256", "ES256", "EdDSA")}


@pytest.fixture
def jwks(tmp_path: Path, keys: dict[str, Any]) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(a, k, f"kid-{a}") for a, k in keys.items()]}))
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def verifier(jwks: Path, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier.load(
        TokenSettings(jwks_file=jwks, issuer=ISSUER, audience=AUDIENCE, leeway_s=30),
        clock=clock,
        monotonic=clock,
    )


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "acme-0003",
        "tenant": "acme-retail",
        "team": "support",
        "role": "customer",
        "iat": int(NOW),
        "exp": int(NOW) + 900,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(keys: dict[str, Any], alg: str = "EdDSA", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), keys[alg], algorithm=alg, headers={"kid": f"kid-{alg}"})


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.principal(token)
    return caught.value.reason


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_a_good_token_is_the_customers_principal(
    verifier: TokenVerifier, keys: dict[str, Any], alg: str
) -> None:
    principal = verifier.principal(sign(keys, alg))
    assert principal.tenant_id == "acme-retail"
    assert principal.team_id == "support"
    assert principal.role == "customer"
    assert principal.user_id == "acme-0003"
    assert principal.principal_id == "user:acme-0003"
    assert principal.end_user


def test_expired_and_not_yet_valid_tokens(verifier: TokenVerifier, keys: dict[str, Any]) -> None:
    assert refused(verifier, sign(keys, exp=int(NOW) - 31)) == "EXPIRED_CREDENTIAL"
    assert verifier.principal(sign(keys, exp=int(NOW) - 10)).user_id  # inside the leeway
    assert refused(verifier, sign(keys, nbf=int(NOW) + 120)) == "INVALID_CREDENTIAL"
    assert verifier.principal(sign(keys, nbf=int(NOW) + 10)).user_id
    assert refused(verifier, sign(keys, exp=None)) == "INVALID_CREDENTIAL"
    assert refused(verifier, sign(keys, exp="soon")) == "INVALID_CREDENTIAL"


def test_a_verified_token_is_cached_only_until_it_expires(
    verifier: TokenVerifier, keys: dict[str, Any], clock: FakeClock
) -> None:
    token = sign(keys, exp=int(NOW) + 60)
    assert verifier.principal(token).user_id == "acme-0003"
    clock.advance(60 + 30)
    assert refused(verifier, token) == "EXPIRED_CREDENTIAL"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example.test/"},
        {"iss": None},
        {"aud": "someone-else"},
        {"aud": None},
        {"sub": None},
        {"sub": "Not A Customer"},
        {"tenant": None},
        {"team": None},
        {"role": "service"},
        {"role": None},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_wrong_claims_are_refused(
    verifier: TokenVerifier, keys: dict[str, Any], overrides: dict[str, Any]
) -> None:
    assert refused(verifier, sign(keys, **overrides)) == "INVALID_CREDENTIAL"


def test_a_token_signed_by_another_key_is_refused(verifier: TokenVerifier) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    token = jwt.encode(claims(), stranger, algorithm="EdDSA", headers={"kid": "kid-EdDSA"})
    assert refused(verifier, token) == "INVALID_CREDENTIAL"
    unknown_kid = jwt.encode(claims(), stranger, algorithm="EdDSA", headers={"kid": "nobody"})
    assert refused(verifier, unknown_kid) == "INVALID_CREDENTIAL"


def test_a_tampered_token_is_refused(verifier: TokenVerifier, keys: dict[str, Any]) -> None:
    header, payload, signature = sign(keys).split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["sub"] = "acme-0004"
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert refused(verifier, f"{header}.{body}.{signature}") == "INVALID_CREDENTIAL"


def _unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(payload).encode())
    return head + "." + part(signature)


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        token = _unsigned({"alg": alg, "typ": "JWT", "kid": "kid-EdDSA"}, claims())
        assert refused(verifier, token) == "INVALID_CREDENTIAL"
    assert refused(verifier, _unsigned({"typ": "JWT"}, claims())) == "INVALID_CREDENTIAL"


@pytest.mark.parametrize("kid", ["kid-RS256", "kid-ES256", "kid-EdDSA"])
def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, keys: dict[str, Any], kid: str
) -> None:
    """The classic confusion: the public key used as an HMAC secret."""
    alg = kid.removeprefix("kid-")
    public = keys[alg].public_key()
    for encoding in (
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(_jwk(alg, keys[alg], kid)).encode(),
    ):
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        unsigned = _unsigned(header, claims()).rsplit(".", 1)[0]
        mac = hmac.new(encoding, unsigned.encode(), hashlib.sha256).digest()
        token = unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        assert refused(verifier, token) == "INVALID_CREDENTIAL"


def test_a_header_naming_another_algorithm_than_its_key_is_refused(
    verifier: TokenVerifier, keys: dict[str, Any]
) -> None:
    token = jwt.encode(claims(), keys["ES256"], algorithm="ES256", headers={"kid": "kid-RS256"})
    assert refused(verifier, token) == "INVALID_CREDENTIAL"


def test_a_rotated_jwks_is_picked_up_and_empties_the_cache(
    jwks: Path, keys: dict[str, Any], verifier: TokenVerifier, clock: FakeClock
) -> None:
    token = sign(keys, "RS256")
    assert verifier.principal(token).user_id
    # The issuer drops the RSA key: within the refresh interval its tokens stop working.
    kept = {a: k for a, k in keys.items() if a != "RS256"}
    jwks.write_text(json.dumps({"keys": [_jwk(a, k, f"kid-{a}") for a, k in kept.items()]}))
    clock.advance(2.0)
    assert refused(verifier, token) == "INVALID_CREDENTIAL"
    assert verifier.principal(sign(keys, "ES256")).user_id


def test_a_jwks_with_private_or_symmetric_keys_is_refused(keys: dict[str, Any]) -> None:
    private = json.loads(RSAAlgorithm.to_jwk(keys["RS256"]))
    with pytest.raises(JwksError, match="private or symmetric"):
        parse_jwks(json.dumps({"keys": [private]}), source="x")
    with pytest.raises(JwksError, match="private or symmetric"):
        parse_jwks(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), source="x")
    with pytest.raises(JwksError, match=r"no signature keys|expected"):
        parse_jwks(json.dumps({"keys": []}), source="x")
