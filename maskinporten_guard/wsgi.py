"""
Protect any WSGI application (Flask, Django, Pyramid, Falcon...) in one line.

    app.wsgi_app = MaskinportenWSGIMiddleware(app.wsgi_app, rules=[...])

The middleware only translates: it reads the method, `PATH_INFO`,
`QUERY_STRING` and `HTTP_AUTHORIZATION` from the environ, asks the shared
`SyncGuard` for a decision, and either calls the application or writes the
RFC 6750 / problem+json refusal the guard rendered. The ASGI middleware asks
the same core the same question, so both answer byte for byte alike.

What the application sees, under these environ keys:

- `maskinporten.identity` (`IDENTITY_KEY`): the verified `Identity`, or None
  when the route is public, the request is a preflight, or an optional route
  was called without a token;
- `maskinporten.decision` (`DECISION_KEY`): the whole `Decision`, with the
  rule that matched and the scopes that authorised the request.

Rules match `PATH_INFO`, the path below the mount point: an application
mounted at `/api` (`SCRIPT_NAME="/api"`) writes its rules as `/inspections`,
not `/api/inspections`, exactly as its own routes are written.

WSGI servers fold repeated headers into one: waitress and Werkzeug join two
`Authorization` headers with ", ", so the environ holds one value with a
comma. A bearer token never contains a comma, so the guard reads it as
several credentials and answers 400 `invalid_request`, which is also the
answer RFC 6750 asks for when a request carries more than one.

Pre-fork servers (gunicorn with several workers): nothing is fetched and no
thread is started when the middleware is built, so an application imported
by the master (`--preload`) forks cleanly. Each process starts its own work
on its first request: a key prefetch in the background and the recorder's
flush thread. Key sources, verifier caches and ledgers also reset their
locks, clients and threads in a forked child (see `maskinporten_guard._fork`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from . import _fork
from .clock import Clock, system_clock
from .decision import Decision, SyncGuard, policy_argument
from .identity import Identity
from .policy import Policy, Rule
from .record import Recorder
from .settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "DECISION_KEY",
    "IDENTITY_KEY",
    "MaskinportenWSGIMiddleware",
    "ProcessStart",
    "identity_from_environ",
]

logger = logging.getLogger("maskinporten_guard.wsgi")

IDENTITY_KEY = "maskinporten.identity"
"""The environ key holding the verified `Identity` (or None)."""

DECISION_KEY = "maskinporten.decision"
"""The environ key holding the `Decision` for the request."""


def identity_from_environ(environ: WSGIEnvironment) -> Identity | None:
    """The identity the middleware verified for this request, if any."""
    identity = environ.get(IDENTITY_KEY)

    return identity if isinstance(identity, Identity) else None


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class ProcessStart:
    """
    Start a guard's background work once per process, on first use.

    Building the guard does no IO; the first request in each process (the
    master before a fork never serves one) starts the recorder's flush thread
    and a key prefetch in a daemon thread, so no request waits for it and a
    down issuer never fails the application's start. Thread-safe.

    Args:
        guard: the guard to start.
        prefetch: fetch the keys in the background on first use.
    """

    def __init__(self, guard: SyncGuard, *, prefetch: bool = True) -> None:
        self.guard = guard
        self.prefetch = prefetch
        self._pid: int | None = None
        self._lock = threading.Lock()
        _fork.reset_in_child(self)

    def ensure(self) -> None:
        """Start this process's work unless it has started already."""
        if self._pid == os.getpid():
            return
        with self._lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            self._pid = pid
        recorder = self.guard.recorder
        if recorder is not None:
            recorder.start_thread()
        if self.prefetch:
            threading.Thread(
                target=self._prefetch, name="maskinporten-guard-prefetch", daemon=True
            ).start()
        logger.debug("guard started in process %d", pid)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def _prefetch(self) -> None:
        if not self.guard.verifier.prefetch():
            logger.warning(
                "the signing keys could not be fetched at start-up; the guard "
                "will retry on the first request that needs them"
            )


class MaskinportenWSGIMiddleware:
    """
    A WSGI middleware that lets through only what the route rules allow.

    Give either the rules (`rules=` or `policy=`, with `settings=` or the
    `MASKINPORTEN_*` environment variables) or a ready `guard=`.

    Args:
        app: the WSGI application to protect.
        rules: the route rules, first match wins; unmatched routes fail closed.
        policy: a ready `Policy`, instead of `rules`.
        settings: the issuer and verification rules; read from the
            `MASKINPORTEN_*` environment variables when None.
        guard: a ready `SyncGuard`; then none of the above but `app`.
        recorder: where decisions are written down (audit, ledger, metrics).
        realm: the `realm` of `WWW-Authenticate` challenges.
        expose_descriptions: put human descriptions in refusals.
        prefetch: fetch the keys in the background on each process's first
            request.
        clock: the time source for verification (tests inject one).
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        rules: Sequence[Rule] | None = None,
        policy: Policy | None = None,
        settings: Settings | None = None,
        guard: SyncGuard | None = None,
        recorder: Recorder | None = None,
        realm: str = "maskinporten",
        expose_descriptions: bool = True,
        prefetch: bool = True,
        clock: Clock = system_clock,
    ) -> None:
        policy = policy_argument(
            guard=guard, rules=rules, policy=policy, settings=settings
        )
        if guard is None:
            guard = SyncGuard(
                policy,
                settings,
                realm=realm,
                expose_descriptions=expose_descriptions,
                recorder=recorder,
                clock=clock,
            )
        self.app = app
        self.guard = guard
        self.start = ProcessStart(guard, prefetch=prefetch)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        self.start.ensure()
        decision = self.decide(environ)
        if decision.allowed:
            environ[IDENTITY_KEY] = decision.identity
            environ[DECISION_KEY] = decision
            return self.app(environ, start_response)

        environ[DECISION_KEY] = decision
        refusal = self.guard.response(decision)
        start_response(_status_line(refusal.status), list(refusal.headers))

        return [refusal.body]

    def decide(self, environ: WSGIEnvironment) -> Decision:
        """Read one request from its environ and ask the guard about it."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        authorization = environ.get("HTTP_AUTHORIZATION")
        preflight = (
            method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        )

        return self.guard.check(
            method,
            _path(environ),
            [authorization] if authorization is not None else [],
            environ.get("QUERY_STRING", ""),
            preflight=preflight,
        )

    def close(self) -> None:
        """Flush the records and close the key source (tests, clean exits)."""
        self.guard.shutdown()


def _path(environ: WSGIEnvironment) -> str:
    """`PATH_INFO` as text: PEP 3333 hands it over as latin-1 decoded bytes."""
    raw: str = environ.get("PATH_INFO", "") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw
