"""OIDC bearer tokens: a JWT from an identity provider, verified against its JWKS.

The signing keys come from `auth.jwks_file` (read once, at construction) or `auth.jwks_url`
(fetched on first use and cached by PyJWT's `PyJWKClient`, refreshed when a token names an
unknown `kid`, at most once per cooldown). A token must carry a known `kid`, an allowed
asymmetric algorithm that matches its key (never `none` or HS*: no algorithm confusion), a
valid signature, `exp`, `iss` equal to `auth.issuer`, `aud` containing `auth.audience` and
`sub`; `nbf` and `iat` are checked when present, all with `auth.leeway_s`.

The claims named in the settings give the principal: the tenant (a string), the roles (a
list, or one string separated by spaces or commas; the highest known role wins) and the
access groups (a list, optional). A claim name is looked up as is first, then as a dotted
path (`realm_access.roles`), so URL-named claims (`https://example.com/roles`) work too.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import jwt

from core.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    PermissionDeniedError,
)
from core.settings import AuthSettings
from core.types import Principal, Role, check_name

logger = logging.getLogger(__name__)

#: PyJWT's errors, by the short reason a caller may read. Order matters: subclasses first.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidIssuedAtError, "invalid issued-at time"),
    (jwt.InvalidAlgorithmError, "signing algorithm not allowed for this key"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidKeyError, "signing key refused"),
    (jwt.DecodeError, "malformed token"),
)
#: The OIDC core spec caps `sub` at 255 ASCII characters.
_MAX_SUBJECT_CHARS = 255
_ROLE_SEPARATORS = re.compile(r"[\s,]+")
_ROLES_BY_NAME = {role.value: role for role in Role}


def _refused(reason: str) -> AuthenticationError:
    logger.info("bearer token rejected: %s", reason)
    return AuthenticationError(f"invalid bearer token: {reason}")


def _claim(claims: dict[str, Any], name: str) -> Any:
    """`claims[name]`, else the dotted path `name` walked through nested objects."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _role(value: Any, claim: str) -> Role:
    """The highest known role in a list or a space/comma-separated string of names."""
    if isinstance(value, str):
        names = _ROLE_SEPARATORS.split(value)
    elif isinstance(value, list):
        names = [v for v in value if isinstance(v, str)]
    else:
        names = []
    known = [_ROLES_BY_NAME[n] for n in (n.strip().lower() for n in names) if n in _ROLES_BY_NAME]
    if not known:
        logger.info("bearer token refused: no known role in claim %r", claim)
        raise PermissionDeniedError(
            f"the token's {claim!r} claim holds no known role ({', '.join(_ROLES_BY_NAME)})"
        )
    order = list(Role)
    return max(known, key=order.index)


def _groups(value: Any, claim: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise _refused(f"claim {claim!r} is not a list of group names")
    try:
        return tuple(sorted({check_name("group", g) for g in value}))
    except InvalidRequestError as exc:
        raise _refused(f"claim {claim!r} holds an invalid group name") from exc


class OidcVerifier:
    """Bearer JWT in, `Principal` out; `AuthenticationError` (401) for any bad token,
    `PermissionDeniedError` (403) for a good token that grants no known role."""

    def __init__(self, settings: AuthSettings) -> None:
        if not settings.issuer or not settings.audience:
            raise ConfigError("OIDC needs RAG_AUTH__ISSUER and RAG_AUTH__AUDIENCE")
        weak = [a for a in settings.algorithms if a.upper().startswith(("HS", "NONE"))]
        if weak or not settings.algorithms:
            raise ConfigError(
                "RAG_AUTH__ALGORITHMS: only asymmetric algorithms (RS*, ES*, PS*), not "
                f"{weak or 'an empty list'}"
            )
        self._settings = settings
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._keys: dict[str, jwt.PyJWK] = {}
        self._client: jwt.PyJWKClient | None = None
        if settings.jwks_file is not None:
            self._keys = _read_jwks(settings.jwks_file)
        elif settings.jwks_url:
            try:
                # No fetch here: the first token fetches the set, PyJWT caches it 5 minutes.
                self._client = jwt.PyJWKClient(settings.jwks_url, lifespan=300, timeout=5)
            except jwt.PyJWKClientError as exc:
                raise ConfigError(f"RAG_AUTH__JWKS_URL: {exc}") from exc
        else:
            raise ConfigError("OIDC needs RAG_AUTH__JWKS_URL or RAG_AUTH__JWKS_FILE")

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; see the module docstring for what is checked."""
        settings = self._settings
        key = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=settings.algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=settings.leeway_s,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise _refused(_reason(exc)) from exc

        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT_CHARS:
            raise _refused("claim 'sub' is not a string of 1-255 characters")
        tenant = _claim(claims, settings.tenant_claim)
        if not isinstance(tenant, str):
            raise _refused(f"token lacks a string {settings.tenant_claim!r} claim (the tenant)")
        try:
            check_name("tenant", tenant)
        except InvalidRequestError as exc:
            raise _refused(f"claim {settings.tenant_claim!r} is not a valid tenant name") from exc
        return Principal(
            tenant=tenant,
            role=_role(_claim(claims, settings.roles_claim), settings.roles_claim),
            access_groups=_groups(_claim(claims, settings.groups_claim), settings.groups_claim),
            key_id=f"oidc:{subject}",
        )

    def _signing_key(self, token: str) -> jwt.PyJWK:
        """The JWK named by the token's `kid`, after a cheap check of its `alg`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _refused("malformed token") from exc
        if header.get("alg") not in self._settings.algorithms:
            # Before any key lookup: `none`, HS256 and friends never reach the JWKS endpoint.
            raise _refused("signing algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refused("token names no signing key (`kid`)")
        if self._client is None:
            if kid not in self._keys:
                raise _refused("unknown signing key")
            return self._keys[kid]
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("cannot fetch the JWKS from %s: %s", self._settings.jwks_url, exc)
            raise AuthenticationError("cannot fetch signing keys; try again later") from exc
        except jwt.PyJWKClientError as exc:
            raise _refused("unknown signing key") from exc
        except jwt.PyJWTError as exc:  # a malformed or empty key set from the endpoint
            logger.warning("unusable JWKS at %s: %s", self._settings.jwks_url, exc)
            raise AuthenticationError("cannot fetch signing keys; try again later") from exc


def _read_jwks(path: Path) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS file, by `kid` (keys for encryption are left out)."""
    try:
        keys = jwt.PyJWKSet.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError, jwt.PyJWTError) as exc:
        raise ConfigError(f"RAG_AUTH__JWKS_FILE {path}: not a readable JWKS ({exc})") from exc
    signing = {k.key_id: k for k in keys if k.key_id and k.public_key_use in ("sig", None)}
    if not signing:
        raise ConfigError(f"RAG_AUTH__JWKS_FILE {path}: no signing key with a `kid`")
    return signing


def _reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "invalid token"
