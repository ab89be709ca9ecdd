"""
A real HTTP issuer on 127.0.0.1 serving a `FakeMaskinporten`'s documents.

Where the network is the point (timeouts, redirects, oversized or compressed
bodies, an issuer that goes down), tests talk to `IssuerServer` over a real
socket. Faults can be switched on and off while it runs; they apply to the
metadata and key set documents, not to the token endpoint.

`POST /token` accepts the RFC 7523 jwt-bearer grant from clients registered
with `register_client`, checked the way Maskinporten checks it, so that real
Maskinporten client libraries can fetch tokens from it during development.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from ._issuer import FakeMaskinporten

__all__ = ["Fault", "IssuerServer", "RegisteredClient"]

Fault = Literal[
    "down", "refuse", "garbage", "empty", "slow", "drip", "redirect", "huge", "gzip"
]
"""
What the server does wrong, for every endpoint, while `fault` is set:

- `down`: 503; `refuse`: close the connection without an answer;
- `garbage`: 200 with a body that is not JSON; `empty`: 200 `{"keys": []}`;
- `slow`: wait `delay` seconds, then answer; `drip`: send the answer one byte
  every `delay` seconds;
- `redirect`: 302 to a URL that would serve the real document;
- `huge`: stream a JSON body of 64 MiB; `gzip`: a gzip bomb of zeros, 16 MiB
  expanded, with `Content-Encoding: gzip`.
"""

METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/jwk"
TOKEN_PATH = "/token"  # noqa: S105 - a URL path, not a secret
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS256", "RS384", "RS512")
_MAX_FORM_BYTES = 64 * 1024
_MOVED_PATH = "/moved/jwk"
_HUGE_BYTES = 64 * 1024 * 1024
_BOMB_BYTES = 16 * 1024 * 1024

_bomb_lock = threading.Lock()
_bomb: list[bytes] = []


def _gzip_bomb() -> bytes:
    """A small gzip member that expands to many zeros, made once per process."""
    with _bomb_lock:
        if not _bomb:
            _bomb.append(gzip.compress(b"\0" * _BOMB_BYTES))

        return _bomb[0]


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """
    A client allowed to use the token endpoint, as Maskinporten registers one.

    Args:
        client_id: the id the client's assertions carry in `iss`.
        public_key: the key the client's assertions are signed with.
        consumer: the orgno of the organisation tokens are issued to.
        scopes: the scopes granted to that organisation.
        kid: the key id the client's assertions may name in their header.
    """

    client_id: str
    public_key: RSAPublicKey
    consumer: str
    scopes: frozenset[str]
    kid: str | None = None


class _GrantRefused(Exception):
    """A token request is refused; the answer is 400 with this OAuth error."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class IssuerServer:
    """
    Serve a fake issuer's metadata and key set over HTTP on a loopback port.

    On start it binds (port 0 picks a free one) and sets `fake.issuer` to its
    own URL, so minted tokens carry the issuer this server stands for.
    Request handling is quiet: nothing is written to stderr.

    Args:
        fake: the issuer whose documents are served.
        host: a loopback address to bind.
        port: the port to bind; 0 picks a free one.

    Attributes:
        fault: None, or the `Fault` the document endpoints show from now on.
        delay: seconds used by the `slow` and `drip` faults.
        metadata_fetches: requests for the metadata document so far.
        jwks_fetches: requests for the key set so far.
        token_lifetime: seconds the tokens issued at `/token` live.
        max_assertion_lifetime: the longest `exp - iat` a grant may state;
            Maskinporten allows 120 s.
        leeway: seconds of clock skew allowed for a grant's `iat` and `exp`.
    """

    def __init__(
        self, fake: FakeMaskinporten, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.fake = fake
        self.host = host
        self.port = port
        self.fault: Fault | None = None
        self.delay = 0.05
        self._counts_lock = threading.Lock()
        self._metadata_fetches = 0
        self._jwks_fetches = 0
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.token_lifetime = 120
        self.max_assertion_lifetime = 120.0
        self.leeway = 10.0
        self._clients: dict[str, RegisteredClient] = {}
        self._grant_lock = threading.Lock()
        self._seen_jtis: dict[tuple[str, str], float] = {}

    def register_client(
        self,
        client_id: str,
        public_key: RSAPublicKey | Mapping[str, Any],
        consumer: str,
        scopes: Collection[str],
        *,
        kid: str | None = None,
    ) -> RegisteredClient:
        """
        Let a client fetch tokens at `/token` with assertions signed by its key.

        Args:
            client_id: the client id its assertions carry in `iss`.
            public_key: its RSA public key, or the public JWK of it.
            consumer: the orgno its tokens name as `consumer`.
            scopes: the scopes it may ask for.
            kid: the key id its assertions name; a JWK's own `kid` by default.
        """
        if not isinstance(public_key, RSAPublicKey):
            kid = kid or public_key.get("kid")
            loaded = RSAAlgorithm.from_jwk(dict(public_key))
            if not isinstance(loaded, RSAPublicKey):
                raise ValueError(f"the key of client {client_id!r} is not public")
            public_key = loaded
        client = RegisteredClient(
            client_id, public_key, consumer, frozenset(scopes), kid
        )
        with self._grant_lock:
            self._clients[client_id] = client

        return client

    @property
    def token_endpoint(self) -> str:
        """Where the jwt-bearer grant is accepted."""
        return self.url.rstrip("/") + TOKEN_PATH

    @property
    def url(self) -> str:
        """The issuer URL, with its trailing slash."""
        return f"http://{self.host}:{self.port}/"

    @property
    def jwks_uri(self) -> str:
        """Where the key set is served."""
        return self.url.rstrip("/") + JWKS_PATH

    @property
    def metadata_uri(self) -> str:
        """Where the RFC 8414 metadata document is served."""
        return self.url.rstrip("/") + METADATA_PATH

    @property
    def metadata_fetches(self) -> int:
        """Requests for the metadata document so far."""
        with self._counts_lock:
            return self._metadata_fetches

    @property
    def jwks_fetches(self) -> int:
        """Requests for the key set so far."""
        with self._counts_lock:
            return self._jwks_fetches

    def start(self) -> IssuerServer:
        """Bind, point the fake issuer at this server, and serve in a thread."""
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self.fake.issuer = self.url
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"issuer-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

        return self

    def stop(self) -> None:
        """Stop serving and close the socket; dripping answers are cut off."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> IssuerServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _count(self, path: str) -> None:
        with self._counts_lock:
            if path == METADATA_PATH:
                self._metadata_fetches += 1
            elif path == JWKS_PATH:
                self._jwks_fetches += 1

    def grant(self, form: Mapping[str, list[str]]) -> dict[str, Any]:
        """
        Answer a token request (RFC 7523 section 2.1) as Maskinporten would.

        The assertion must be signed by a registered client's key with an
        RS256/RS384/RS512 signature, have `aud` equal to this issuer's URL and
        `iss` equal to the client id, live at most `max_assertion_lifetime`
        seconds, carry a `jti` not seen before, and ask only for scopes the
        client was granted. An optional `resource` claim becomes the `aud` of
        the issued token.

        Raises:
            _GrantRefused: the request is refused; the error says why.
        """
        grant_type = _single(form, "grant_type")
        if grant_type != JWT_BEARER:
            raise _GrantRefused(
                "unsupported_grant_type", f"grant_type must be {JWT_BEARER}"
            )
        assertion = _single(form, "assertion")
        if not assertion:
            raise _GrantRefused("invalid_request", "send one assertion parameter")

        client = self._client_for(assertion)
        claims = self._verified_claims(assertion, client)
        scopes = _requested_scopes(claims, client)
        self._remember_jti(client, claims)

        resource = claims.get("resource")
        token = self.fake.mint(
            " ".join(scopes),
            client.consumer,
            client_id=client.client_id,
            audience=resource if isinstance(resource, str | list) else None,
            lifetime=self.token_lifetime,
        )

        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(scopes),
        }

    def _client_for(self, assertion: str) -> RegisteredClient:
        """Find the client by the assertion's `kid`, else by its `iss`."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _GrantRefused(
                "invalid_request", "the assertion is not a signed JWT"
            ) from None
        with self._grant_lock:
            clients = list(self._clients.values())
        kid = header.get("kid")
        for client in clients:
            if kid is not None and client.kid == kid:
                return client
        client_id = unverified.get("iss")
        for client in clients:
            if client.client_id == client_id:
                return client
        raise _GrantRefused(
            "invalid_client", "no registered client has the assertion's kid or iss"
        )

    def _verified_claims(
        self, assertion: str, client: RegisteredClient
    ) -> dict[str, Any]:
        """Check the signature, `iss`, `aud` and the times of an assertion."""
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                client.public_key,
                algorithms=list(ASSERTION_ALGORITHMS),
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise _GrantRefused(
                "invalid_grant", "the assertion's signature does not verify"
            ) from None
        except jwt.PyJWTError:
            raise _GrantRefused(
                "invalid_grant", "the assertion is not an RS256/RS384/RS512 JWT"
            ) from None
        if claims.get("iss") != client.client_id:
            raise _GrantRefused("invalid_client", "iss must be the client id")
        if claims.get("aud") != self.url:
            raise _GrantRefused("invalid_grant", f"aud must be {self.url}")

        issued_at = _number(claims, "iat")
        expires_at = _number(claims, "exp")
        now = self.fake.clock()
        if expires_at - issued_at > self.max_assertion_lifetime:
            raise _GrantRefused(
                "invalid_grant",
                f"the assertion lives longer than {self.max_assertion_lifetime:.0f} s",
            )
        if expires_at <= now - self.leeway:
            raise _GrantRefused("invalid_grant", "the assertion has expired")
        if issued_at > now + self.leeway:
            raise _GrantRefused("invalid_grant", "the assertion's iat is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _GrantRefused("invalid_grant", "the assertion has no jti")

        return claims

    def _remember_jti(
        self, client: RegisteredClient, claims: Mapping[str, Any]
    ) -> None:
        """Refuse a `jti` seen before; remember each until its assertion expires."""
        now = self.fake.clock()
        key = (client.client_id, str(claims["jti"]))
        with self._grant_lock:
            self._seen_jtis = {
                k: v for k, v in self._seen_jtis.items() if v > now - self.leeway
            }
            if key in self._seen_jtis:
                raise _GrantRefused("invalid_grant", "the assertion's jti was used")
            self._seen_jtis[key] = float(claims["exp"])


def _single(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise _GrantRefused("invalid_request", f"{name} is sent more than once")

    return values[0] if values else None


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _GrantRefused("invalid_grant", f"the assertion has no numeric {name}")
    if not math.isfinite(value):
        raise _GrantRefused("invalid_grant", f"the assertion has no numeric {name}")

    return float(value)


def _requested_scopes(claims: Mapping[str, Any], client: RegisteredClient) -> list[str]:
    scope = claims.get("scope")
    if not isinstance(scope, str) or not scope.split():
        raise _GrantRefused("invalid_scope", "the assertion asks for no scope")
    requested = scope.split()
    refused = sorted(set(requested) - client.scopes)
    if refused:
        raise _GrantRefused(
            "invalid_scope",
            f"the client is not granted {' '.join(refused)}",
        )

    return requested


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: IssuerServer


class _Handler(BaseHTTPRequestHandler):
    """Routes GET requests to the fake's documents, through the current fault."""

    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read counters, not logs."""

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        documents: dict[str, Callable[[], dict[str, Any]]] = {
            METADATA_PATH: owner.fake.metadata,
            JWKS_PATH: owner.fake.jwks,
            _MOVED_PATH: owner.fake.jwks,
        }
        document = documents.get(path)
        if document is None:
            self._send(404, b'{"error": "not_found"}')
            return
        owner._count(path)
        body = json.dumps(document()).encode()
        fault = owner.fault if path != _MOVED_PATH else None
        try:
            self._answer(owner, fault, body)
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_POST(self) -> None:
        owner = self.server.owner
        if self.path.split("?", 1)[0] != TOKEN_PATH:
            self._send(404, b'{"error": "not_found"}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if content_type != "application/x-www-form-urlencoded":
                raise _GrantRefused("invalid_request", "send a form-encoded body")
            if not 0 < length <= _MAX_FORM_BYTES:
                raise _GrantRefused("invalid_request", "the body is empty or too big")
            body = self.rfile.read(length).decode("utf-8", "replace")
            answer = owner.grant(parse_qs(body, keep_blank_values=True))
            status = 200
        except _GrantRefused as exc:
            # The description is the server's own text: the assertion is never
            # echoed back.
            answer = {"error": exc.error, "error_description": exc.description}
            status = 400
        try:
            self._send(status, json.dumps(answer).encode(), no_store=True)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _answer(self, owner: IssuerServer, fault: Fault | None, body: bytes) -> None:
        if fault is None:
            self._send(200, body)
        elif fault == "down":
            self._send(503, b'{"error": "temporarily_unavailable"}')
        elif fault == "refuse":
            self.close_connection = True
        elif fault == "garbage":
            self._send(200, b"<html>this is not JSON</html>")
        elif fault == "empty":
            self._send(200, b'{"keys": []}')
        elif fault == "slow":
            owner._stopping.wait(owner.delay)
            self._send(200, body)
        elif fault == "drip":
            self._headers(200, len(body))
            for index in range(len(body)):
                if owner._stopping.wait(owner.delay):
                    return
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
        elif fault == "redirect":
            self.send_response(302)
            self.send_header("Location", owner.url.rstrip("/") + _MOVED_PATH)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault == "huge":
            self._headers(200, None)
            chunk = b" " * 65536
            self.wfile.write(b'{"keys": [')
            for _ in range(_HUGE_BYTES // len(chunk)):
                if owner._stopping.is_set():
                    return
                self.wfile.write(chunk)
        elif fault == "gzip":
            bomb = _gzip_bomb()
            self._headers(200, len(bomb), encoding="gzip")
            self.wfile.write(bomb)

    def _send(self, status: int, body: bytes, *, no_store: bool = False) -> None:
        self._headers(status, len(body), no_store=no_store)
        self.wfile.write(body)

    def _headers(
        self,
        status: int,
        length: int | None,
        *,
        encoding: str | None = None,
        no_store: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if no_store:
            self.send_header("Cache-Control", "no-store")
        if length is not None:
            self.send_header("Content-Length", str(length))
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
