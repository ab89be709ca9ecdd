from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, jsonify
from werkzeug.wrappers import Response as BaseResponse

from maskinporten_guard.decision import SyncGuard
from maskinporten_guard.errors import ConfigurationError
from maskinporten_guard.flask import (
    Maskinporten,
    MaskinportenRefusal,
    current_identity,
    settings_from_config,
)
from maskinporten_guard.policy import PUBLIC, Rule, require
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import FakeMaskinporten, StaticKeys

READ = "demo:inspections.read"
WRITE = "demo:inspections.write"
WRITER = "991825827"
OTHER = "889640782"


def make_app(fake: FakeMaskinporten, **options: Any) -> tuple[Flask, Maskinporten]:
    """A Flask app with a few decorated views over a fake issuer's keys."""
    app = Flask(__name__)
    guard = options.pop(
        "guard",
        SyncGuard(settings=Settings.custom(fake.issuer), keys=StaticKeys(fake)),
    )
    maskinporten = Maskinporten(guard=guard, prefetch=False, **options)
    maskinporten.init_app(app)

    @app.get("/read/<int:item>")
    @maskinporten.require(all_of=[READ])
    def read(item: int) -> Response:
        identity = current_identity()
        assert identity is not None
        return jsonify(item=item, consumer=identity.consumer_orgno)

    @app.get("/either")
    @maskinporten.require(any_of=[READ, WRITE])
    def either() -> str:
        return "ok"

    @app.get("/both")
    @maskinporten.require(all_of=[READ, WRITE])
    def both() -> str:
        return "ok"

    @app.post("/write")
    @maskinporten.require(all_of=[WRITE], consumers=[WRITER])
    def write() -> tuple[str, int]:
        return "created", 201

    @app.get("/open")
    def open_view() -> Response:
        identity = current_identity()
        return jsonify(consumer=identity.consumer_orgno if identity else None)

    return app, maskinporten


@pytest.fixture
def app(maskinporten: FakeMaskinporten) -> Flask:
    return make_app(maskinporten)[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path", "scope", "consumer", "status"),
    [
        pytest.param("GET", "/read/1", READ, WRITER, 200, id="all-of-met"),
        pytest.param("GET", "/read/1", WRITE, WRITER, 403, id="all-of-missing"),
        pytest.param("GET", "/either", WRITE, WRITER, 200, id="any-of-one"),
        pytest.param("GET", "/either", "demo:x", WRITER, 403, id="any-of-none"),
        pytest.param("GET", "/both", f"{READ} {WRITE}", WRITER, 200, id="both"),
        pytest.param("GET", "/both", READ, WRITER, 403, id="both-one-missing"),
        pytest.param("POST", "/write", WRITE, WRITER, 201, id="consumer-allowed"),
        pytest.param("POST", "/write", WRITE, OTHER, 403, id="consumer-refused"),
    ],
)
def test_decorator_applies_requirement(
    app: Flask,
    maskinporten: FakeMaskinporten,
    method: str,
    path: str,
    scope: str,
    consumer: str,
    status: int,
) -> None:
    """The decorator lets through exactly the tokens that meet its requirement."""
    token = maskinporten.mint(scope, consumer)

    response = app.test_client().open(path, method=method, headers=bearer(token))

    assert response.status_code == status


def test_view_reads_identity_from_g(app: Flask, maskinporten: FakeMaskinporten) -> None:
    """A decorated view reads the verified identity with current_identity()."""
    response = app.test_client().get(
        "/read/7", headers=bearer(maskinporten.mint(READ, OTHER))
    )

    assert response.get_json() == {"item": 7, "consumer": OTHER}


def test_undecorated_view_has_no_identity(app: Flask) -> None:
    """current_identity() is None where nothing verified a token."""
    response = app.test_client().get("/open")

    assert response.get_json() == {"consumer": None}


@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        pytest.param({}, 401, 'Bearer realm="maskinporten"', id="no-token"),
        pytest.param(
            {"Authorization": "Bearer a.b.c"},
            401,
            'Bearer realm="maskinporten", error="invalid_token"',
            id="bad-token",
        ),
        pytest.param(
            {"Authorization": "Bearer a, Bearer b"},
            400,
            'Bearer realm="maskinporten", error="invalid_request"',
            id="two-credentials",
        ),
    ],
)
def test_refusals_follow_rfc6750(
    app: Flask, headers: dict[str, str], status: int, challenge: str
) -> None:
    """Refusals from the decorator carry the RFC 6750 status, challenge and body."""
    response = app.test_client().get("/read/1", headers=headers)

    assert response.status_code == status
    assert response.headers["WWW-Authenticate"].startswith(challenge)
    assert response.content_type == "application/problem+json"
    assert response.get_json()["status"] == status


def test_insufficient_scope_names_scope(
    app: Flask, maskinporten: FakeMaskinporten
) -> None:
    """A 403 from the decorator names the scope the view requires."""
    response = app.test_client().get(
        "/read/1", headers=bearer(maskinporten.mint(WRITE))
    )

    assert f'scope="{READ}"' in response.headers["WWW-Authenticate"]


def test_custom_handler_for_the_class(
    app: Flask, maskinporten: FakeMaskinporten
) -> None:
    """An application can answer refusals its own way with an error handler."""

    @app.errorhandler(MaskinportenRefusal)
    def refused(error: MaskinportenRefusal) -> tuple[Response, int]:
        assert error.error is not None
        return jsonify(mine=error.error.reason), error.code or 500

    response = app.test_client().get("/read/1")

    assert response.status_code == 401
    assert response.get_json() == {"mine": "missing_token"}


def test_custom_handler_for_the_status(
    app: Flask, maskinporten: FakeMaskinporten
) -> None:
    """A handler registered for a status code catches refusals with that status."""

    @app.errorhandler(403)
    def forbidden(error: Exception) -> tuple[str, int]:
        return "nope", 403

    response = app.test_client().get(
        "/read/1", headers=bearer(maskinporten.mint(WRITE))
    )

    assert response.get_data(as_text=True) == "nope"


def test_configured_from_flask_config(maskinporten: FakeMaskinporten) -> None:
    """init_app reads MASKINPORTEN_* config keys before the environment."""
    app = Flask(__name__)
    app.config.update(
        MASKINPORTEN_ISSUER="http://127.0.0.1:9/",
        MASKINPORTEN_JWKS_URI="http://127.0.0.1:9/jwk",
        MASKINPORTEN_AUDIENCE=["https://api.example.no", "https://b.example.no"],
        MASKINPORTEN_REQUIRE_PID=True,
    )

    Maskinporten(app, prefetch=False)
    settings = Maskinporten.guard_for(app).settings

    assert settings.issuer == "http://127.0.0.1:9/"
    assert settings.jwks_uri == "http://127.0.0.1:9/jwk"
    assert settings.audience == ("https://api.example.no", "https://b.example.no")
    assert settings.require_pid is True


def test_config_key_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Flask config key overrides the environment variable of the same name."""
    monkeypatch.setenv("MASKINPORTEN_ENV", "test")
    monkeypatch.setenv("MASKINPORTEN_LEEWAY", "10")

    settings = settings_from_config({"MASKINPORTEN_LEEWAY": 20})

    assert settings.issuer == "https://test.maskinporten.no/"
    assert settings.leeway == 20


def test_one_extension_serves_two_apps(maskinporten: FakeMaskinporten) -> None:
    """init_app on two applications gives each its own guard."""
    maskinporten_ext = Maskinporten(prefetch=False)
    first, second = Flask("first"), Flask("second")
    first.config["MASKINPORTEN_ISSUER"] = "http://127.0.0.1:1/"
    second.config["MASKINPORTEN_ENV"] = "test"

    maskinporten_ext.init_app(first)
    maskinporten_ext.init_app(second)

    assert Maskinporten.guard_for(first).settings.issuer == "http://127.0.0.1:1/"
    assert Maskinporten.guard_for(second).settings.issuer.startswith("https://test.")


def test_decorator_without_init_app_says_how_to_fix(
    maskinporten: FakeMaskinporten,
) -> None:
    """A decorated view on an app without the extension fails with a clear message."""
    app = Flask(__name__)
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/x")
    @Maskinporten(prefetch=False).require(all_of=[READ])
    def view() -> str:
        return "x"

    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().get("/x")


def test_bad_requirement_fails_at_decoration() -> None:
    """An invalid orgno in the decorator fails when the view is defined."""
    with pytest.raises(ConfigurationError, match="consumers"):
        Maskinporten().require(all_of=[READ], consumers=["123456789"])


def test_rules_wrap_the_app_and_reuse_identity(
    maskinporten: FakeMaskinporten,
) -> None:
    """With rules, the middleware verifies once and the decorator reuses it."""
    guard = SyncGuard(
        [Rule("/open", PUBLIC), Rule("/{rest:path}", require())],
        Settings.custom(maskinporten.issuer),
        keys=StaticKeys(maskinporten),
    )
    app, _ = make_app(maskinporten, guard=guard, middleware=True)
    client = app.test_client()
    lookups_before = guard.verifier.stats().cache_misses

    ok = client.get("/read/1", headers=bearer(maskinporten.mint(READ)))
    refused = client.get("/read/1")

    assert ok.status_code == 200
    assert guard.verifier.stats().cache_misses == lookups_before + 1
    assert refused.status_code == 401


def test_route_template_names_the_decision(
    app: Flask, maskinporten: FakeMaskinporten
) -> None:
    """A refusal names the Flask route template, not the concrete path."""
    routes: list[str] = []

    @app.errorhandler(MaskinportenRefusal)
    def refused(error: MaskinportenRefusal) -> BaseResponse:
        routes.append(error.decision.route)
        return error.get_response()

    app.test_client().get("/read/99", headers=bearer(maskinporten.mint(WRITE)))

    assert routes == ["/read/<int:item>"]
