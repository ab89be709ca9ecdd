"""
The demo inspections API on Flask: the same routes as the FastAPI example.

- `GET /health`: public;
- `GET /me`: any valid token; the verified identity as JSON;
- `GET /inspections/<id>`: needs scope `demo:inspections.read`;
- `POST /inspections`: needs `demo:inspections.write` and a consumer listed in
  `DEMO_WRITERS` (comma-separated orgnos, default `991825827`); answers 201.

Configured from the `MASKINPORTEN_*` environment variables. Serve it with any
WSGI server, for instance:

    waitress-serve --port 8000 --call examples.flask_app.app:create_app
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from flask import Flask, Response, jsonify, request

from maskinporten_guard.decision import SyncGuard
from maskinporten_guard.flask import Maskinporten, current_identity
from maskinporten_guard.identity import Identity
from maskinporten_guard.record import Recorder
from maskinporten_guard.settings import Settings

READ = "demo:inspections.read"
WRITE = "demo:inspections.write"
DEFAULT_WRITERS = "991825827"


def demo_writers(environ: dict[str, str] | None = None) -> list[str]:
    """The consumers allowed to file inspections, from `DEMO_WRITERS`."""
    env = os.environ if environ is None else environ
    raw = env.get("DEMO_WRITERS", "") or DEFAULT_WRITERS

    return [orgno.strip() for orgno in raw.split(",") if orgno.strip()]


def _identity() -> Identity:
    identity = current_identity()
    if identity is None:
        raise RuntimeError("a protected view ran without an identity")

    return identity


def create_app(
    settings: Settings | None = None,
    guard: SyncGuard | None = None,
    *,
    writers: list[str] | None = None,
    recorder: Recorder | None = None,
) -> Flask:
    """
    Build the example application.

    Args:
        settings: the verification settings; from `MASKINPORTEN_*` when None.
        guard: a ready guard (tests pass one with in-process keys).
        writers: the consumers allowed to POST; from `DEMO_WRITERS` when None.
        recorder: where decisions are written down; from the environment when
            None (`MASKINPORTEN_GRANTS_STORE` turns the grant ledger on).
    """
    app = Flask(__name__)
    if guard is not None:
        maskinporten = Maskinporten(app, guard=guard)
    else:
        maskinporten = Maskinporten(
            app, settings=settings, recorder=recorder or Recorder.from_env()
        )
    numbers = itertools.count(1000)

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @app.get("/me")
    @maskinporten.require()
    def me() -> Response:
        return jsonify(_identity().as_dict())

    @app.get("/inspections/<int:inspection_id>")
    @maskinporten.require(all_of=[READ])
    def inspection(inspection_id: int) -> Response:
        return jsonify(
            id=inspection_id,
            status="approved",
            requested_by=_identity().consumer_orgno,
        )

    @app.post("/inspections")
    @maskinporten.require(
        all_of=[WRITE], consumers=writers if writers is not None else demo_writers()
    )
    def file_inspection() -> tuple[Response, int]:
        body: Any = request.get_json(silent=True) or {}
        return jsonify(
            id=next(numbers),
            site=body.get("site") if isinstance(body, dict) else None,
            filed_by=_identity().consumer_orgno,
        ), 201

    return app


def __getattr__(name: str) -> Flask:
    # `app` is built on first access, so importing this module never needs
    # the environment variables (waitress-serve examples.flask_app.app:app).
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
