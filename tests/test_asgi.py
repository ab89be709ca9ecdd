"""The ASGI middleware, through a real ASGI client."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from maskinporten_guard.asgi import MaskinportenMiddleware
from maskinporten_guard.clock import ManualClock
from maskinporten_guard.errors import KeysUnavailable
from maskinporten_guard.keys import VerificationKey
from maskinporten_guard.policy import OPTIONAL, PUBLIC, Policy, Rule, require
from maskinporten_guard.settings import Settings
from maskinporten_guard.starlette import protect
from maskinporten_guard.testing import AsyncStaticKeys, FakeMaskinporten

# Starlette asks for its httpx fork in its test client; the pinned httpx works.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from starlette.testclient import TestClient, WebSocketDenialResponse

NOW = 1_760_000_000.0
READ = "demo:inspections.read"

RULES = [
    Rule("/health", PUBLIC),
    Rule("/maybe", OPTIONAL),
    Rule("/me", require()),
    Rule("/open", PUBLIC),
    Rule("/inspections/{id}", require(all_of=[READ]), {"GET"}),
    Rule("/ws", require(all_of=[READ])),
]


async def whoami(request: Request) -> Response:
    user = request.user
    return JSONResponse(
        {
            "state": request.state.maskinporten.consumer_orgno,
            "user": user.display_name,
            "authenticated": user.is_authenticated,
            "scopes": request.auth.scopes,
            "decision": request.state.maskinporten_decision.reason,
        }
    )


async def text(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires(READ)
async def starlette_requires(request: Request) -> Response:
    return PlainTextResponse("ok")


@protect(all_of=[READ])
async def protected(request: Request) -> Response:
    return PlainTextResponse(request.state.maskinporten.consumer_orgno)


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.state.maskinporten.consumer_orgno)
    await websocket.close()


ROUTES = [
    Route("/health", text),
    Route("/maybe", text),
    Route("/me", whoami),
    Route("/inspections/{id}", starlette_requires),
    Route("/open", protected),
    WebSocketRoute("/ws", socket),
]


class NoKeys(AsyncStaticKeys):
    def cached(self, kid: str) -> VerificationKey | None:
        return None

    async def get_key(self, kid: str) -> VerificationKey:
        raise KeysUnavailable("the issuer's keys could not be fetched", retry_after=7)


@pytest.fixture
def fake() -> FakeMaskinporten:
    return FakeMaskinporten(clock=ManualClock(NOW))


def make_app(fake: FakeMaskinporten, keys: Any = None, **options: Any) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.add_middleware(
        MaskinportenMiddleware,
        policy=Policy(RULES, allow_preflight=True),
        settings=Settings.custom(fake.issuer),
        keys=keys or AsyncStaticKeys(fake),
        clock=fake.clock,
        **options,
    )
    return app


@pytest.fixture
def client(fake: FakeMaskinporten) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(fake))
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OUTCOMES = [
    pytest.param("/me", [], b"", 401, None, id="no-token"),
    pytest.param(
        "/me",
        [("authorization", "Bearer x.y.z")],
        b"",
        401,
        "invalid_token",
        id="bad-token",
    ),
    pytest.param(
        "/me",
        [("authorization", "Bearer a"), ("authorization", "Bearer b")],
        b"",
        400,
        "invalid_request",
        id="two-headers",
    ),
    pytest.param(
        "/me", [], b"access_token=abc", 400, "invalid_request", id="query-token"
    ),
    pytest.param(
        "/me",
        [("authorization", "Bearer " + "a" * 20000)],
        b"",
        400,
        "invalid_request",
        id="oversized",
    ),
    pytest.param(
        "/me",
        [("authorization", "Bearer a b")],
        b"",
        400,
        "invalid_request",
        id="two-credentials",
    ),
    pytest.param(
        "/me",
        [("authorization", "Basic dXNlcjpwYXNz")],
        b"",
        401,
        None,
        id="basic-scheme",
    ),
    pytest.param(
        "/me",
        [("authorization", "Bearer \xff\xfe.\x00.")],
        b"",
        401,
        "invalid_token",
        id="latin1-junk",
    ),
    pytest.param("/nowhere", [], b"", 401, None, id="unmatched-no-token"),
    pytest.param(
        "/maybe",
        [("authorization", "Bearer x.y.z")],
        b"",
        401,
        "invalid_token",
        id="optional-bad-token",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "headers", "query", "status", "error"), OUTCOMES)
async def test_refusals(
    client: httpx.AsyncClient,
    path: str,
    headers: list[tuple[str, str]],
    query: bytes,
    status: int,
    error: str | None,
) -> None:
    """Each bad request gets its RFC 6750 status, challenge and problem body."""
    async with client:
        response = await client.get(
            path,
            headers=[(k.encode(), v.encode("latin-1")) for k, v in headers],
            params=query.decode() or None,
        )

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    body = json.loads(response.content)
    if error is None:
        assert challenge == 'Bearer realm="maskinporten"'
        assert "error" not in body
    else:
        assert f'error="{error}"' in challenge
        assert body["error"] == error


@pytest.mark.anyio
async def test_insufficient_scope_names_scope(
    client: httpx.AsyncClient, fake: FakeMaskinporten
) -> None:
    """A 403 says insufficient_scope and which scope the route needs."""
    async with client:
        response = await client.get(
            "/inspections/1", headers=bearer(fake.mint("demo:x"))
        )

    assert response.status_code == 403
    assert 'scope="demo:inspections.read"' in response.headers["www-authenticate"]


@pytest.mark.anyio
async def test_unmatched_route_fails_closed(
    client: httpx.AsyncClient, fake: FakeMaskinporten
) -> None:
    """A valid token on a route no rule covers is refused with 403."""
    async with client:
        response = await client.get("/nowhere", headers=bearer(fake.mint(READ)))

    assert response.status_code == 403


@pytest.mark.anyio
async def test_keys_unavailable_is_503(fake: FakeMaskinporten) -> None:
    """Without usable keys the answer is 503 with Retry-After."""
    transport = httpx.ASGITransport(app=make_app(fake, keys=NoKeys(fake)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/me", headers=bearer(fake.mint(READ)))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/health", {}, id="public"),
        pytest.param("/maybe", {}, id="optional-anonymous"),
        pytest.param(
            "/me",
            {"Origin": "http://x", "Access-Control-Request-Method": "GET"},
            id="preflight",
        ),
    ],
)
async def test_passes_without_token(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    """Public, optional and preflight requests reach the app without a token."""
    method = "OPTIONS" if "Origin" in headers else "GET"
    async with client:
        response = await client.request(method, path, headers=headers)

    assert response.status_code in (200, 405)
    assert "www-authenticate" not in response.headers


@pytest.mark.anyio
async def test_identity_reaches_endpoint(
    client: httpx.AsyncClient, fake: FakeMaskinporten
) -> None:
    """request.state, scope auth and scope user carry the verified identity."""
    async with client:
        response = await client.get("/me", headers=bearer(fake.mint([READ, "demo:b"])))

    assert response.json() == {
        "state": "991825827",
        "user": "991825827",
        "authenticated": True,
        "scopes": ["demo:b", READ],
        "decision": "ok",
    }


@pytest.mark.anyio
async def test_starlette_requires_uses_token_scopes(
    fake: FakeMaskinporten,
) -> None:
    """Starlette's requires() passes with the scope in the token."""
    rules = [Rule("/inspections/{id}", require())]
    app = Starlette(routes=ROUTES)
    app.add_middleware(
        MaskinportenMiddleware,
        rules=rules,
        settings=Settings.custom(fake.issuer),
        keys=AsyncStaticKeys(fake),
        clock=fake.clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        allowed = await client.get("/inspections/1", headers=bearer(fake.mint(READ)))
        refused = await client.get("/inspections/1", headers=bearer(fake.mint("d:x")))

    assert (allowed.status_code, refused.status_code) == (200, 403)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scope", "status"),
    [pytest.param(READ, 200, id="allowed"), pytest.param("demo:x", 403, id="refused")],
)
async def test_protect_decorator(
    client: httpx.AsyncClient, fake: FakeMaskinporten, scope: str, status: int
) -> None:
    """@protect verifies the token on a route the middleware leaves public."""
    async with client:
        response = await client.get("/open", headers=bearer(fake.mint(scope)))

    assert response.status_code == status


def test_websocket_accepted_with_valid_token(fake: FakeMaskinporten) -> None:
    """A WebSocket with a valid token is accepted and sees the identity."""
    with (
        TestClient(make_app(fake)) as client,
        client.websocket_connect("/ws", headers=bearer(fake.mint(READ))) as ws,
    ):
        assert ws.receive_text() == "991825827"


def test_websocket_refused_before_accept(fake: FakeMaskinporten) -> None:
    """A refused WebSocket gets the HTTP denial response, never an accept."""
    with (
        TestClient(make_app(fake)) as client,
        pytest.raises(WebSocketDenialResponse) as denied,
        client.websocket_connect("/ws"),
    ):
        pass

    assert denied.value.status_code == 401
    assert denied.value.headers["www-authenticate"] == 'Bearer realm="maskinporten"'


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("keys", "code"),
    [pytest.param(None, 1008, id="policy"), pytest.param("none", 1013, id="keys")],
)
async def test_websocket_close_without_denial_extension(
    fake: FakeMaskinporten, keys: str | None, code: int
) -> None:
    """Without the denial extension a refused WebSocket is closed before accept."""
    middleware = MaskinportenMiddleware(
        _never_called,
        rules=RULES,
        settings=Settings.custom(fake.issuer),
        keys=NoKeys(fake) if keys else AsyncStaticKeys(fake),
        clock=fake.clock,
    )
    sent: list[Message] = []
    headers = [(b"authorization", f"Bearer {fake.mint(READ)}".encode())] if keys else []
    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": headers,
        "query_string": b"",
    }

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)

    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == code


async def _never_called(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the app must not be called")


class Lifespan:
    """Drives the lifespan protocol against an ASGI app, as a server would."""

    def __init__(self) -> None:
        self.incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        self.sent: list[str] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message["type"])


class Started:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def startup(self) -> None:
        self.events.append("startup")

    async def shutdown(self) -> None:
        self.events.append("shutdown")


async def _no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "inner",
    [
        pytest.param("starlette", id="inner-handles-lifespan"),
        pytest.param("raw", id="inner-ignores-lifespan"),
    ],
)
async def test_lifespan_starts_and_stops_guard(
    fake: FakeMaskinporten, inner: str
) -> None:
    """Lifespan starts and stops the guard whether or not the app handles it."""
    app: Any = Starlette(routes=ROUTES) if inner == "starlette" else _no_lifespan
    middleware = MaskinportenMiddleware(
        app,
        rules=RULES,
        settings=Settings.custom(fake.issuer),
        keys=AsyncStaticKeys(fake),
    )
    started = Started()
    middleware.guard.startup = started.startup  # type: ignore[method-assign]
    middleware.guard.shutdown = started.shutdown  # type: ignore[method-assign]
    server = Lifespan()

    await middleware({"type": "lifespan", "state": {}}, server.receive, server.send)

    assert started.events == ["startup", "shutdown"]
    assert server.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@pytest.mark.anyio
async def test_lifespan_survives_issuer_down(fake: FakeMaskinporten) -> None:
    """A failing start-up is logged, and the app still starts."""

    class Broken(AsyncStaticKeys):
        async def prefetch(self) -> bool:
            raise OSError("down")

    middleware = MaskinportenMiddleware(
        _no_lifespan,
        rules=RULES,
        settings=Settings.custom(fake.issuer),
        keys=Broken(fake),
    )
    server = Lifespan()

    await middleware({"type": "lifespan"}, server.receive, server.send)

    assert server.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
