"""OIDC with the signing keys behind a URL: a real HTTP server on loopback serves the JWKS.

The keys are fetched on the first token (not at start-up), then cached; an unreachable
endpoint is a 401 that says so, with a warning in the log.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from auth.oidc import OidcVerifier
from core.errors import AuthenticationError
from core.settings import AuthSettings
from tests.unit.test_oidc import AUDIENCE, ISSUER, Provider

pytestmark = pytest.mark.integration


class JwksServer:
    def __init__(self, jwks: Path) -> None:
        self.fetches = 0
        body = jwks.read_bytes()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    return Provider(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def jwks_server(provider: Provider) -> Iterator[JwksServer]:
    server = JwksServer(provider.jwks)
    yield server
    server.stop()


def _verifier(url: str) -> OidcVerifier:
    return OidcVerifier(AuthSettings(mode="oidc", jwks_url=url, issuer=ISSUER, audience=AUDIENCE))


def test_keys_are_fetched_on_first_use_then_cached(
    provider: Provider, jwks_server: JwksServer
) -> None:
    verifier = _verifier(jwks_server.url)
    assert jwks_server.fetches == 0
    assert verifier.verify(provider.token()).key_id == "oidc:user-42"
    assert verifier.verify(provider.token("ec-1")).tenant == "acme"
    assert jwks_server.fetches == 1
    # An unknown kid may force one refresh, at most once per cooldown: no fetch storm.
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="unknown signing key"):
            verifier.verify(provider.token(kid="rotated-in"))
    assert jwks_server.fetches <= 2


def test_an_unreachable_endpoint_is_a_401_that_says_so(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = _verifier(f"http://127.0.0.1:{port}/certs")
    caplog.set_level(logging.WARNING, logger="auth.oidc")
    with pytest.raises(AuthenticationError, match="cannot fetch signing keys"):
        verifier.verify(provider.token())
    assert "cannot fetch the JWKS" in caplog.text
