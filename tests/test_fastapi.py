"""FastAPI dependencies: identity, refusals and the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Security

from maskinporten_guard.clock import ManualClock
from maskinporten_guard.decision import Guard
from maskinporten_guard.fastapi import Maskinporten, install, install_openapi
from maskinporten_guard.identity import Identity
from maskinporten_guard.policy import Policy, Rule, require
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import AsyncStaticKeys, FakeMaskinporten

READ = "demo:inspections.read"
Reader = Annotated[Identity, Security(Maskinporten(all_of=[READ]))]


@pytest.fixture
def fake() -> FakeMaskinporten:
    return FakeMaskinporten(clock=ManualClock(1_760_000_000.0))


def make_app(fake: FakeMaskinporten, *, handler: bool = True) -> FastAPI:
    guard = Guard(
        None, Settings.custom(fake.issuer), keys=AsyncStaticKeys(fake), clock=fake.clock
    )
    app = FastAPI()
    if handler:
        install(app, guard)
    else:
        app.state.maskinporten_guard = guard
    install_openapi(app, Policy([Rule("/ruled", require(any_of=["demo:a"]))]))

    @app.get("/read")
    async def read(identity: Reader) -> dict[str, str]:
        return {"consumer": identity.consumer_orgno}

    @app.get("/ruled")
    async def ruled() -> dict[str, str]:
        return {}

    return app


async def call(app: FastAPI, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers)


@pytest.mark.anyio
async def test_dependency_returns_identity(fake: FakeMaskinporten) -> None:
    """Without middleware, the dependency verifies the token itself."""
    response = await call(make_app(fake), "/read", fake.mint(READ, "889640782"))

    assert response.json() == {"consumer": "889640782"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scope", "status", "error"),
    [
        pytest.param(None, 401, None, id="no-token"),
        pytest.param("demo:x", 403, "insufficient_scope", id="wrong-scope"),
    ],
)
async def test_refusal_is_problem_json(
    fake: FakeMaskinporten, scope: str | None, status: int, error: str | None
) -> None:
    """A dependency's refusal is the guard's RFC 6750 answer, not {"detail"}."""
    response = await call(make_app(fake), "/read", fake.mint(scope) if scope else None)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="')
    assert response.json().get("error") == error


@pytest.mark.anyio
async def test_refusal_without_handler_keeps_challenge(fake: FakeMaskinporten) -> None:
    """Without install(), FastAPI's handler still sends the status and challenge."""
    response = await call(make_app(fake, handler=False), "/read", fake.mint("d:x"))

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.anyio
async def test_openapi_declares_scheme_and_scopes(fake: FakeMaskinporten) -> None:
    """The document has the OAuth2 scheme and the scopes of each operation."""
    schema = (await call(make_app(fake), "/openapi.json", None)).json()

    scheme = schema["components"]["securitySchemes"]["maskinporten"]
    assert scheme["type"] == "oauth2"
    assert set(scheme["flows"]["clientCredentials"]["scopes"]) == {READ, "demo:a"}
    assert schema["paths"]["/read"]["get"]["security"] == [{"maskinporten": [READ]}]
    assert schema["paths"]["/ruled"]["get"]["security"] == [
        {"maskinporten": ["demo:a"]}
    ]
