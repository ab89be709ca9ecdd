"""The FastAPI example answers every case of the shared contract table."""

from __future__ import annotations

import json

import httpx
import pytest

from examples.fastapi_app.app import create_app
from maskinporten_guard.clock import ManualClock
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import AsyncStaticKeys, FakeMaskinporten
from tests.example_contract import CASES, Case

NOW = 1_760_000_000.0


@pytest.fixture
def fake() -> FakeMaskinporten:
    return FakeMaskinporten(clock=ManualClock(NOW))


@pytest.fixture
def client(fake: FakeMaskinporten) -> httpx.AsyncClient:
    app = create_app(
        Settings.custom(fake.issuer),
        keys=AsyncStaticKeys(fake),
        writers=("991825827",),
        clock=fake.clock,
    )
    transport = httpx.ASGITransport(app=app)

    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES)
async def test_contract(
    client: httpx.AsyncClient, fake: FakeMaskinporten, case: Case
) -> None:
    """The example answers the contract's status and RFC 6750 error code."""
    token = case.token(fake)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async with client:
        response = await client.request(case.method, case.path, headers=headers)

    assert response.status_code == case.status
    if case.status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        if case.error is not None:
            assert json.loads(response.content)["error"] == case.error
        assert response.headers["www-authenticate"].startswith("Bearer realm=")


@pytest.mark.anyio
async def test_me_returns_identity(
    client: httpx.AsyncClient, fake: FakeMaskinporten
) -> None:
    """GET /me answers the verified identity as JSON."""
    token = fake.mint("demo:inspections.read", "889640782")

    async with client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})

    body = response.json()
    assert body["consumer"] == "889640782"
    assert body["scopes"] == ["demo:inspections.read"]
    assert body["client_amr"] == "private_key_jwt"


@pytest.mark.anyio
async def test_openapi_shows_scopes(client: httpx.AsyncClient) -> None:
    """The example's OpenAPI document names the scope of each operation."""
    async with client:
        schema = (await client.get("/openapi.json")).json()

    paths = schema["paths"]
    assert paths["/inspections/{inspection_id}"]["get"]["security"] == [
        {"maskinporten": ["demo:inspections.read"]}
    ]
    assert paths["/inspections"]["post"]["security"] == [
        {"maskinporten": ["demo:inspections.write"]}
    ]
    assert "security" not in paths["/health"]["get"]


def test_writers_from_env() -> None:
    """DEMO_WRITERS is read as comma-separated orgnos, with a default."""
    from examples.fastapi_app.app import writers_from_env

    assert writers_from_env({"DEMO_WRITERS": "889640782, 991825827"}) == (
        "889640782",
        "991825827",
    )
    assert writers_from_env({}) == ("991825827",)


def test_served_by_uvicorn_against_http_issuer() -> None:
    """Served by uvicorn on 127.0.0.1, the example verifies against a real JWKS."""
    import socket
    import threading

    import uvicorn

    from maskinporten_guard.testing import IssuerServer

    fake = FakeMaskinporten()
    with IssuerServer(fake) as issuer:
        app = create_app(Settings.custom(issuer.url), writers=("991825827",))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            started = threading.Event()
            for _ in range(200):
                if server.started:
                    started.set()
                    break
                started.wait(0.025)
            assert server.started, "uvicorn did not start within 5 s"
            base = f"http://127.0.0.1:{port}"
            token = fake.mint("demo:inspections.read")
            with httpx.Client(base_url=base, timeout=5) as client:
                health = client.get("/health")
                read = client.get("/inspections/7", headers=bearer(token))
                missing = client.get("/inspections/7")
        finally:
            server.should_exit = True
            thread.join(timeout=10)

    assert (health.status_code, read.status_code) == (200, 200)
    assert missing.status_code == 401
    assert issuer.jwks_fetches >= 1


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
