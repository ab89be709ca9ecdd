"""
A small inspections API protected by Maskinporten tokens.

    MASKINPORTEN_ISSUER=http://127.0.0.1:8400/ uvicorn examples.fastapi_app.app:app

The middleware's rules decide every route (routes without a rule are refused);
the endpoints' dependencies hand them the verified identity and put the
required scopes into the OpenAPI document at `/docs`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Security

from maskinporten_guard import (
    PUBLIC,
    Guard,
    Identity,
    Policy,
    Recorder,
    Rule,
    Settings,
    require,
)
from maskinporten_guard.asgi import MaskinportenMiddleware
from maskinporten_guard.clock import Clock, system_clock
from maskinporten_guard.fastapi import Maskinporten, install, install_openapi
from maskinporten_guard.verifier import AsyncKeys

READ = "demo:inspections.read"
WRITE = "demo:inspections.write"
DEFAULT_WRITERS = ("991825827",)

# The middleware's rules decide; these hand endpoints the identity and show
# the scopes in the OpenAPI document. The writers' allow-list lives in the rule.
Caller = Annotated[Identity, Depends(Maskinporten())]
Reader = Annotated[Identity, Security(Maskinporten(all_of=[READ]))]
Writer = Annotated[Identity, Security(Maskinporten(all_of=[WRITE]))]


def writers_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The consumers allowed to write, from `DEMO_WRITERS` (comma-separated)."""
    raw = (os.environ if environ is None else environ).get("DEMO_WRITERS", "")
    writers = tuple(part.strip() for part in raw.split(",") if part.strip())

    return writers or DEFAULT_WRITERS


def build_policy(writers: tuple[str, ...] = DEFAULT_WRITERS) -> Policy:
    """The API's rules: public health and docs, scopes per inspection route."""
    return Policy(
        [
            Rule("/health", PUBLIC, {"GET"}),
            Rule("/docs", PUBLIC, {"GET"}),
            Rule("/docs/oauth2-redirect", PUBLIC, {"GET"}),
            Rule("/openapi.json", PUBLIC, {"GET"}),
            Rule("/me", require(), {"GET"}),
            Rule("/inspections/{inspection_id}", require(all_of=[READ]), {"GET"}),
            Rule(
                "/inspections",
                require(all_of=[WRITE], consumers=writers),
                {"POST"},
            ),
        ]
    )


def create_app(
    settings: Settings | None = None,
    guard: Guard | None = None,
    *,
    keys: AsyncKeys | None = None,
    recorder: Recorder | None = None,
    writers: tuple[str, ...] | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """
    Build the API.

    Args:
        settings: the issuer to trust; from `MASKINPORTEN_*` when None.
        guard: a ready guard built over `build_policy(...)`; when None one is
            built from the other arguments.
        keys: a key source for the guard it builds (tests pass one here).
        recorder: where decisions are written down; from the environment when
            None (`MASKINPORTEN_GRANTS_STORE` turns the grant ledger on).
        writers: consumers allowed to write; from `DEMO_WRITERS` when None.
        clock: the time source for verification.
    """
    writers = writers or writers_from_env()
    if guard is None:
        recorder = recorder or Recorder.from_env(clock=clock)
        guard = Guard(
            build_policy(writers), settings, keys=keys, recorder=recorder, clock=clock
        )
    app = FastAPI(title="Inspections (Maskinporten demo)")
    app.add_middleware(MaskinportenMiddleware, guard=guard)
    install(app, guard)
    install_openapi(
        app, guard.policy, token_url=guard.settings.issuer.rstrip("/") + "/token"
    )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    async def me(identity: Caller) -> dict[str, Any]:
        return identity.as_dict()

    @app.get("/inspections/{inspection_id}")
    async def read_inspection(inspection_id: int, identity: Reader) -> dict[str, Any]:
        return {
            "id": inspection_id,
            "status": "closed",
            "requested_by": identity.consumer_orgno,
        }

    @app.post("/inspections", status_code=201)
    async def create_inspection(
        identity: Writer,
    ) -> dict[str, Any]:
        return {"id": 1, "status": "open", "requested_by": identity.consumer_orgno}

    return app


_app: list[FastAPI] = []


def __getattr__(name: str) -> FastAPI:
    """Build `app` on first use, so importing needs no environment."""
    if name != "app":
        raise AttributeError(name)
    if not _app:
        _app.append(create_app())

    return _app[0]
