"""OIDC bearer tokens against a JWKS file: the test is its own identity provider.

It makes RSA and EC key pairs, writes their public halves as a JWKS, and signs tokens
with PyJWT; each case changes one thing a real provider (or an attacker) could change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth.oidc import OidcVerifier
from core.errors import AuthenticationError, ConfigError, PermissionDeniedError
from core.settings import AuthSettings
from core.types import Principal, Role

ISSUER = "https://idp.example.com/realms/rag"
AUDIENCE = "rag-api"


class Provider:
    """Signing keys and a JWKS file, like an identity provider's."""

    def __init__(self, folder: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk.update(kid="rsa-1", alg="RS256", use="sig")
        ec_jwk.update(kid="ec-1", alg="ES256", use="sig")
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-42",
            "iat": now,
            "exp": now + 300,
            "tenant": "acme",
            "roles": ["reader", "ingestor", "offline_access"],
            "groups": ["legal"],
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "rsa-1", key: Any = None, **changes: Any) -> str:
        algorithm = "ES256" if kid == "ec-1" else "RS256"
        signer = key or (self.ec if kid == "ec-1" else self.rsa)
        return jwt.encode(self.claims(**changes), signer, algorithm, headers={"kid": kid})


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    return Provider(tmp_path_factory.mktemp("idp"))


def _settings(provider: Provider, **changes: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "mode": "oidc",
        "jwks_file": provider.jwks,
        "issuer": ISSUER,
        "audience": AUDIENCE,
    }
    values.update(changes)
    return AuthSettings(**values)


@pytest.fixture
def verifier(provider: Provider) -> OidcVerifier:
    return OidcVerifier(_settings(provider))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _refused(verifier: OidcVerifier, token: str, reason: str) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        verifier.verify(token)


def test_a_valid_token_gives_the_principal_of_its_claims(
    provider: Provider, verifier: OidcVerifier
) -> None:
    assert verifier.verify(provider.token()) == Principal(
        "acme", Role.INGESTOR, ("legal",), "oidc:user-42"
    )
    ec_token = provider.token("ec-1", aud=["account", AUDIENCE], groups=None)
    assert verifier.verify(ec_token) == Principal("acme", Role.INGESTOR, (), "oidc:user-42")


def test_expired_and_not_yet_valid_tokens_are_refused(
    provider: Provider, verifier: OidcVerifier
) -> None:
    now = int(time.time())
    _refused(verifier, provider.token(exp=now - 120), "token expired")
    _refused(verifier, provider.token(nbf=now + 120), "token not yet valid")
    _refused(verifier, provider.token(iat=now + 120), "not yet valid|issued-at")
    # Within the leeway (30 s), a clock a little off is forgiven.
    assert verifier.verify(provider.token(exp=now - 5, nbf=now + 5)).tenant == "acme"


def test_issuer_audience_and_required_claims_are_enforced(
    provider: Provider, verifier: OidcVerifier
) -> None:
    _refused(verifier, provider.token(iss="https://evil.example.com"), "wrong issuer")
    _refused(verifier, provider.token(aud="another-api"), "wrong audience")
    _refused(verifier, provider.token(exp=None), "lacks the 'exp' claim")
    _refused(verifier, provider.token(sub=None), "lacks the 'sub' claim")
    _refused(verifier, provider.token(aud=None), "lacks the 'aud' claim")
    _refused(verifier, provider.token(tenant=None), "lacks a string 'tenant' claim")
    _refused(verifier, provider.token(tenant=["acme"]), "lacks a string 'tenant' claim")
    _refused(verifier, provider.token(tenant="acme/other"), "not a valid tenant name")


def test_a_token_with_no_known_role_is_forbidden(
    provider: Provider, verifier: OidcVerifier
) -> None:
    for roles in (["offline_access", "uma_authorization"], [], "superuser", None, 7):
        with pytest.raises(PermissionDeniedError, match="no known role"):
            verifier.verify(provider.token(roles=roles))


def test_roles_as_a_string_and_claims_at_nested_or_url_paths(provider: Provider) -> None:
    verifier = OidcVerifier(
        _settings(
            provider,
            tenant_claim="https://rag.example.com/tenant",
            roles_claim="realm_access.roles",
            groups_claim="rag.groups",
        )
    )
    token = provider.token(
        tenant=None,
        roles=None,
        groups=None,
        realm_access={"roles": ["default-roles-rag", "admin", "reader"]},
        rag={"groups": ["hr", "legal", "hr"]},
        **{"https://rag.example.com/tenant": "globex"},
    )
    assert verifier.verify(token) == Principal(
        "globex", Role.ADMIN, ("hr", "legal"), "oidc:user-42"
    )
    default = OidcVerifier(_settings(provider))
    assert default.verify(provider.token(roles="reader ingestor")).role == Role.INGESTOR
    assert default.verify(provider.token(roles="Reader,admin")).role == Role.ADMIN


def test_an_invalid_group_name_in_the_claim_is_refused(
    provider: Provider, verifier: OidcVerifier
) -> None:
    _refused(verifier, provider.token(groups=["legal", "*"]), "invalid group name")
    _refused(verifier, provider.token(groups=["/team-a"]), "invalid group name")
    _refused(verifier, provider.token(groups="legal"), "not a list of group names")


def test_unknown_kid_and_foreign_keys_are_refused(
    provider: Provider, verifier: OidcVerifier
) -> None:
    _refused(verifier, provider.token(kid="rotated-away"), "unknown signing key")
    _refused(verifier, provider.token(key=provider.stranger), "bad signature")
    no_kid = jwt.encode(provider.claims(), provider.rsa, "RS256")
    _refused(verifier, no_kid, "names no signing key")
    # An EC-signed token that claims the RSA key's kid: the key fixes the algorithm.
    mismatch = jwt.encode(provider.claims(), provider.ec, "ES256", headers={"kid": "rsa-1"})
    _refused(verifier, mismatch, "algorithm not allowed")
    _refused(verifier, "not.a.jwt", "malformed token")
    _refused(verifier, "", "malformed token")


def test_alg_none_is_refused(provider: Provider, verifier: OidcVerifier) -> None:
    header = _b64(json.dumps({"alg": "none", "kid": "rsa-1", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(provider.claims()).encode())
    _refused(verifier, f"{header}.{payload}.", "algorithm not allowed")


def test_hs256_signed_with_the_public_key_is_refused(
    provider: Provider, verifier: OidcVerifier
) -> None:
    """The classic algorithm confusion: the attacker HMACs with the (public) RSA key."""
    public_pem = provider.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(provider.claims(roles=["admin"])).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    _refused(verifier, f"{header}.{payload}.{_b64(signature)}", "algorithm not allowed")


def test_symmetric_algorithms_and_bad_key_files_are_configuration_errors(
    provider: Provider, tmp_path: Path
) -> None:
    # `mode="keys"` skips the settings' own OIDC checks; the verifier still refuses HS256.
    with pytest.raises(ConfigError, match="asymmetric"):
        OidcVerifier(AuthSettings(jwks_file=provider.jwks, issuer=ISSUER, audience=AUDIENCE,
                                  algorithms=["RS256", "HS256"]))  # fmt: skip
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable JWKS"):
        OidcVerifier(_settings(provider, jwks_file=broken))
    with pytest.raises(ConfigError, match="not a readable JWKS"):
        OidcVerifier(_settings(provider, jwks_file=tmp_path / "missing.json"))


def test_the_refusal_says_why_but_never_echoes_the_token(
    provider: Provider, verifier: OidcVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    token = provider.token(aud="another-api")
    with pytest.raises(AuthenticationError) as refused:
        verifier.verify(token)
    assert str(refused.value) == "invalid bearer token: wrong audience"
    assert token not in caplog.text
