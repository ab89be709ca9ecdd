"""
A real HTTP issuer on 127.0.0.1 serving a `FakeMaskinporten`'s documents.

Where the network is the point (timeouts, redirects, oversized or compressed
bodies, an issuer that goes down), tests talk to `IssuerServer` over a real
socket. Faults can be switched on and off while it runs.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from ._issuer import FakeMaskinporten

__all__ = ["Fault", "IssuerServer"]

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
        fault: None, or the `Fault` every endpoint shows from now on.
        delay: seconds used by the `slow` and `drip` faults.
        metadata_fetches: requests for the metadata document so far.
        jwks_fetches: requests for the key set so far.
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

    def _send(self, status: int, body: bytes) -> None:
        self._headers(status, len(body))
        self.wfile.write(body)

    def _headers(
        self, status: int, length: int | None, *, encoding: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length is not None:
            self.send_header("Content-Length", str(length))
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
