from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from flask import Flask
from waitress.server import create_server

from examples.flask_app.app import create_app, demo_writers
from maskinporten_guard.decision import SyncGuard
from maskinporten_guard.flask import Maskinporten
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer, StaticKeys

from .example_contract import CASES, READ, WRITE, Case


@pytest.fixture
def app(maskinporten: FakeMaskinporten) -> Flask:
    guard = SyncGuard(
        settings=Settings.custom(maskinporten.issuer), keys=StaticKeys(maskinporten)
    )
    return create_app(guard=guard, writers=["991825827"])


@pytest.mark.parametrize("case", CASES)
def test_contract(app: Flask, maskinporten: FakeMaskinporten, case: Case) -> None:
    """The Flask example answers every case of the shared contract."""
    token = case.token(maskinporten)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    response = app.test_client().open(case.path, method=case.method, headers=headers)

    assert response.status_code == case.status
    challenge = response.headers.get("WWW-Authenticate", "")
    if case.error is not None:
        assert f'error="{case.error}"' in challenge
    elif case.status == 401:
        assert challenge == 'Bearer realm="maskinporten"'


def test_me_returns_the_identity(app: Flask, maskinporten: FakeMaskinporten) -> None:
    """GET /me answers the verified identity as JSON."""
    token = maskinporten.mint(READ, "889640782")

    body = app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"})

    assert body.get_json()["consumer"] == "889640782"
    assert body.get_json()["scopes"] == [READ]


@pytest.mark.parametrize(
    ("value", "writers"),
    [
        pytest.param(None, ["991825827"], id="default"),
        pytest.param("991825827, 889640782", ["991825827", "889640782"], id="list"),
    ],
)
def test_writers_come_from_the_environment(
    value: str | None, writers: list[str]
) -> None:
    """DEMO_WRITERS is a comma-separated list, 991825827 when unset."""
    environ = {} if value is None else {"DEMO_WRITERS": value}

    assert demo_writers(environ) == writers


def test_module_imports_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing the example needs no MASKINPORTEN_* variables; `app` is lazy."""
    import examples.flask_app.app as module

    monkeypatch.delenv("MASKINPORTEN_ENV", raising=False)
    monkeypatch.delenv("MASKINPORTEN_ISSUER", raising=False)

    assert callable(module.create_app)


@pytest.fixture
def served(maskinporten_server: IssuerServer) -> Iterator[str]:
    """The example served by waitress on 127.0.0.1, keys over real HTTP."""
    settings = Settings.custom(
        maskinporten_server.url, jwks_uri=maskinporten_server.jwks_uri
    )
    app = create_app(settings, writers=["991825827"])
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)
        Maskinporten.guard_for(app).shutdown()


def test_served_by_waitress(
    served: str, maskinporten: FakeMaskinporten, maskinporten_server: IssuerServer
) -> None:
    """Over real HTTP, the example verifies tokens against the HTTP issuer."""
    read = {"Authorization": f"Bearer {maskinporten.mint(READ)}"}
    write = {"Authorization": f"Bearer {maskinporten.mint(WRITE, '991825827')}"}

    with httpx.Client(base_url=served, timeout=10) as client:
        answers = [
            client.get("/health").status_code,
            client.get("/me").status_code,
            client.get("/inspections/3", headers=read).status_code,
            client.post("/inspections", headers=write, json={"site": "x"}).status_code,
            client.post("/inspections", headers=read).status_code,
        ]

    assert answers == [200, 401, 200, 201, 403]
    assert maskinporten_server.jwks_fetches == 1
