"""Credentials in, a `Principal` out, by the configured mode (`RAG_AUTH__MODE`).

- `none`: every request is the one local principal (an admin of `auth.local_tenant`).
  Allowed only while the API listens on a loopback address (`rag serve` refuses otherwise).
- `keys`: `Authorization: Bearer rag_<id>_<secret>`, checked against the key store.
- `oidc`: a bearer JWT from an identity provider, checked against its JWKS.

Nothing here reads a request body: who is asking comes from credentials only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.errors import AuthenticationError
from core.settings import AuthSettings
from core.types import Principal, Role, check_name

if TYPE_CHECKING:
    from auth.keys import KeyStore
    from auth.oidc import OidcVerifier

#: Longer bearer tokens are refused before any parsing (keys are ~60 characters; JWTs
#: from common identity providers stay well under this).
MAX_TOKEN_CHARS = 8192


class Authenticator:
    """Turns a bearer token (or its absence) into the caller's `Principal`."""

    def __init__(
        self,
        settings: AuthSettings,
        keys: Callable[[], KeyStore],
        oidc: Callable[[], OidcVerifier],
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._oidc = oidc
        self._local = Principal(
            tenant=check_name("tenant", settings.local_tenant),
            role=Role.ADMIN,
            access_groups=tuple(check_name("group", g) for g in settings.local_groups),
            key_id="local",
        )

    @property
    def mode(self) -> str:
        return self._settings.mode

    def authenticate(self, token: str | None) -> Principal:
        if self._settings.mode == "none":
            return self._local
        if not token:
            raise AuthenticationError("missing credentials: send `Authorization: Bearer <key>`")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError("invalid credentials")
        if self._settings.mode == "keys":
            return self._keys().authenticate(token)
        return self._oidc().verify(token)
