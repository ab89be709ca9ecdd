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
