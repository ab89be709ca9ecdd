from __future__ import annotations

import json
import os
import select
import threading
import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import Client

from maskinporten_guard.decision import Decision, SyncGuard
from maskinporten_guard.errors import ConfigurationError, KeysUnavailable
from maskinporten_guard.policy import OPTIONAL, PUBLIC, Policy, Rule, require
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer, StaticKeys
from maskinporten_guard.wsgi import (
    DECISION_KEY,
    IDENTITY_KEY,
    MaskinportenWSGIMiddleware,
    identity_from_environ,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

READ = "demo:inspections.read"

RULES = [
    Rule("/health", PUBLIC),
    Rule("/me", require()),
    Rule("/maybe", OPTIONAL),
    Rule("/inspections/{id}", require(all_of=[READ]), {"GET"}),
]


def echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Answer what the guard put in the environ."""
    identity = identity_from_environ(environ)
    decision: Decision = environ[DECISION_KEY]
    body = json.dumps(
        {
            "consumer": identity.consumer_orgno if identity else None,
            "reason": decision.reason,
            "route": decision.route,
            "scopes": list(decision.scopes),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])

    return [body]


@pytest.fixture
def guard(maskinporten: FakeMaskinporten) -> SyncGuard:
    return SyncGuard(
        Policy(RULES, allow_preflight=True),
        Settings.custom(maskinporten.issuer),
        keys=StaticKeys(maskinporten),
    )


@pytest.fixture
def client(guard: SyncGuard) -> Client:
    return Client(MaskinportenWSGIMiddleware(echo, guard=guard))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_token_gets_bare_challenge(client: Client) -> None:
    """Without a token the answer is 401 with a challenge that has no error."""
    response = client.get("/me")

    assert response.status == "401 Unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="maskinporten"'
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "error" not in response.get_json()


def test_invalid_token_gets_invalid_token(client: Client) -> None:
    """A token that does not verify gets 401 invalid_token."""
    response = client.get("/me", headers=bearer("a.b.c"))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.get_json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        pytest.param(
            [("Authorization", "Bearer a"), ("Authorization", "Bearer b")],
            "",
            id="two-headers-folded-by-the-server",
        ),
        pytest.param([("Authorization", "Bearer a, Bearer b")], "", id="comma"),
        pytest.param([], "access_token=abc", id="query-token"),
        pytest.param([("Authorization", "Bearer " + "a" * 9000)], "", id="oversized"),
        pytest.param([("Authorization", "Bearer ")], "", id="empty-credential"),
    ],
)
def test_ambiguous_requests_get_invalid_request(
    client: Client, headers: list[tuple[str, str]], query: str
) -> None:
    """Ambiguous or malformed credentials get 400 invalid_request."""
    response = client.get("/me", headers=headers, query_string=query)

    assert response.status == "400 Bad Request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_missing_scope_names_it(client: Client, maskinporten: FakeMaskinporten) -> None:
    """A 403 insufficient_scope challenge says which scope the route requires."""
    response = client.get("/inspections/1", headers=bearer(maskinporten.mint("x:y")))
    challenge = response.headers["WWW-Authenticate"]

    assert response.status == "403 Forbidden"
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{READ}"' in challenge


def test_keys_unavailable_gets_503(maskinporten: FakeMaskinporten) -> None:
    """With no keys to be had, the answer is 503 with Retry-After."""

    class NoKeys(StaticKeys):
        def cached(self, kid: str) -> None:
            return None

        def get_key(self, kid: str) -> Any:
            raise KeysUnavailable(
                "the issuer's keys could not be fetched", retry_after=9
            )

    guard = SyncGuard(
        RULES, Settings.custom(maskinporten.issuer), keys=NoKeys(maskinporten)
    )
    client = Client(MaskinportenWSGIMiddleware(echo, guard=guard))

    response = client.get("/me", headers=bearer(maskinporten.mint(READ)))

    assert response.status == "503 Service Unavailable"
    assert response.headers["Retry-After"] == "9"


def test_allowed_request_carries_identity(
    client: Client, maskinporten: FakeMaskinporten
) -> None:
    """An allowed request reaches the app with identity and decision in the environ."""
    token = maskinporten.mint(READ, "889640782")

    body = client.get("/inspections/5", headers=bearer(token)).get_json()

    assert body == {
        "consumer": "889640782",
        "reason": "ok",
        "route": "/inspections/{id}",
        "scopes": [READ],
    }


@pytest.mark.parametrize(
    ("method", "path", "headers", "reason"),
    [
        pytest.param("GET", "/health", {}, "public", id="public"),
        pytest.param("GET", "/maybe", {}, "anonymous", id="optional-anonymous"),
        pytest.param(
            "OPTIONS",
            "/me",
            {"Access-Control-Request-Method": "GET"},
            "preflight",
            id="preflight",
        ),
    ],
)
def test_open_requests_pass_without_identity(
    client: Client, method: str, path: str, headers: dict[str, str], reason: str
) -> None:
    """Public, anonymous optional and preflight requests pass with no identity."""
    response = client.open(path, method=method, headers=headers)

    assert response.status_code == 200
    assert response.get_json()["reason"] == reason
    assert response.get_json()["consumer"] is None


def test_options_without_preflight_header_needs_token(client: Client) -> None:
    """An OPTIONS request that is not a CORS preflight is not let through."""
    response = client.open("/me", method="OPTIONS")

    assert response.status_code == 401


def test_optional_route_refuses_bad_token(client: Client) -> None:
    """An optional route still refuses a token that does not verify."""
    response = client.get("/maybe", headers=bearer("a.b.c"))

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/admin", id="unknown-path"),
        pytest.param("DELETE", "/inspections/1", id="unlisted-method"),
    ],
)
def test_unmatched_routes_fail_closed(
    client: Client, maskinporten: FakeMaskinporten, method: str, path: str
) -> None:
    """A route no rule covers is refused even with a valid token."""
    token = maskinporten.mint(READ)

    response = client.open(path, method=method, headers=bearer(token))

    assert response.status_code == 403


def test_refusal_never_calls_the_app(guard: SyncGuard) -> None:
    """A refused request does not reach the application."""
    calls: list[WSGIEnvironment] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        calls.append(environ)
        start_response("200 OK", [])
        return [b""]

    Client(MaskinportenWSGIMiddleware(app, guard=guard)).get("/me")

    assert calls == []


def test_rules_match_below_the_mount_point(client: Client) -> None:
    """Rules match PATH_INFO: an app mounted at /api writes /health, not /api/health."""
    response = client.get("/health", environ_overrides={"SCRIPT_NAME": "/api"})

    assert response.status_code == 200


def test_refusal_body_never_echoes_the_token(client: Client) -> None:
    """Neither the body nor the headers of a refusal contain the token sent."""
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOjF9.c2lnbmF0dXJl"

    response = client.get("/me", headers=bearer(token))

    assert token not in response.get_data(as_text=True)
    assert all(token not in value for _, value in response.headers)


def test_guard_and_rules_together_are_refused(guard: SyncGuard) -> None:
    """A ready guard already has its rules, so passing rules as well is an error."""
    with pytest.raises(ConfigurationError, match="guard="):
        MaskinportenWSGIMiddleware(echo, guard=guard, rules=RULES)


def test_building_does_no_io(maskinporten_server: IssuerServer) -> None:
    """Building the middleware fetches nothing, so a pre-fork master stays clean."""
    settings = Settings.custom(
        maskinporten_server.url, jwks_uri=maskinporten_server.jwks_uri
    )

    middleware = MaskinportenWSGIMiddleware(echo, rules=RULES, settings=settings)
    middleware.close()

    assert maskinporten_server.jwks_fetches == 0


def test_issuer_down_does_not_fail_the_app(
    maskinporten: FakeMaskinporten, maskinporten_server: IssuerServer
) -> None:
    """With the issuer down, public routes answer and protected ones get 503."""
    maskinporten_server.fault = "down"
    settings = Settings.custom(
        maskinporten_server.url, jwks_uri=maskinporten_server.jwks_uri
    )
    middleware = MaskinportenWSGIMiddleware(
        echo, rules=RULES, settings=settings, prefetch=False
    )
    client = Client(middleware)
    try:
        health = client.get("/health")
        me = client.get("/me", headers=bearer(maskinporten.mint(READ)))
    finally:
        middleware.close()

    assert (health.status_code, me.status_code) == (200, 503)


def _live_middleware(server: IssuerServer) -> MaskinportenWSGIMiddleware:
    settings = Settings.custom(server.url, jwks_uri=server.jwks_uri)

    return MaskinportenWSGIMiddleware(
        echo, rules=RULES, settings=settings, prefetch=False
    )


def test_concurrent_cold_requests_fetch_keys_once(
    maskinporten: FakeMaskinporten, maskinporten_server: IssuerServer
) -> None:
    """32 threads arriving at a cold guard together cause one JWKS fetch."""
    maskinporten_server.fault = "slow"
    maskinporten_server.delay = 0.3
    middleware = _live_middleware(maskinporten_server)
    tokens = [maskinporten.mint(READ) for _ in range(32)]
    barrier = threading.Barrier(len(tokens), timeout=10)
    statuses: list[int] = []
    lock = threading.Lock()

    def call(token: str) -> None:
        client = Client(middleware)
        barrier.wait()
        status = client.get("/me", headers=bearer(token)).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call, args=(t,)) for t in tokens]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        middleware.close()

    assert statuses == [200] * len(tokens)
    assert maskinporten_server.jwks_fetches == 1


def _wait_for_child(pid: int, timeout: float) -> int:
    """The child's exit code; it is killed if it has not exited in time."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if not ready:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)

    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_worker_fetches_its_own_keys(
    maskinporten: FakeMaskinporten, maskinporten_server: IssuerServer
) -> None:
    """A worker forked during the parent's key fetch fetches its own keys."""
    maskinporten_server.fault = "slow"
    maskinporten_server.delay = 1.0
    middleware = _live_middleware(maskinporten_server)
    token = maskinporten.mint(READ)
    parent_fetch = threading.Thread(target=middleware.guard.verifier.prefetch)
    parent_fetch.start()
    deadline = time.monotonic() + 5
    while maskinporten_server.jwks_fetches == 0 and time.monotonic() < deadline:
        threading.Event().wait(0.01)

    with warnings.catch_warnings():
        # Forking a threaded process is the hazard under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            response = Client(middleware).get("/me", headers=bearer(token))
            code = 0 if response.status_code == 200 else 3
        finally:
            os._exit(code)

    try:
        exit_code = _wait_for_child(pid, timeout=8)
    finally:
        parent_fetch.join(timeout=5)
        middleware.close()

    assert exit_code == 0
    assert maskinporten_server.jwks_fetches == 2


def test_identity_key_holds_none_for_public_routes(client: Client) -> None:
    """The identity key is set, to None, when no token was verified."""
    seen: dict[str, Any] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    guard = client.application.guard  # type: ignore[attr-defined]
    Client(MaskinportenWSGIMiddleware(app, guard=guard)).get("/health")

    assert IDENTITY_KEY in seen
    assert seen[IDENTITY_KEY] is None
