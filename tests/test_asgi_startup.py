"""The ASGI middleware's start-up with the issuer down, through a real lifespan."""

from __future__ import annotations

import warnings
from typing import Any

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from maskinporten_guard import ManualClock, Rule, Settings, require
from maskinporten_guard.asgi import MaskinportenMiddleware
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from starlette.testclient import TestClient

READ = "demo:inspections.read"


async def inspection(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def test_starts_with_issuer_down_then_recovers() -> None:
    """With the issuer down the app starts and answers 503, then 200 once it is up."""
    clock = ManualClock(1_760_000_000.0)
    fake = FakeMaskinporten(clock=clock)
    issuer = IssuerServer(fake).start()
    port = issuer.port
    issuer.stop()
    app = Starlette(routes=[Route("/inspections/{id}", inspection)])
    app.add_middleware(
        MaskinportenMiddleware,
        rules=[Rule("/inspections/{id}", require(all_of=[READ]))],
        settings=Settings.custom(
            fake.issuer, unknown_kid_cooldown=30, connect_timeout=0.5
        ),
        clock=clock,
    )
    headers = {"Authorization": f"Bearer {fake.mint(READ)}"}

    with TestClient(app) as client:
        down = client.get("/inspections/1", headers=headers)
        revived = IssuerServer(fake, port=port).start()
        try:
            clock.advance(31)
            up = client.get("/inspections/1", headers=headers)
        finally:
            revived.stop()

    assert down.status_code == 503
    assert "retry-after" in down.headers
    assert up.status_code == 200
