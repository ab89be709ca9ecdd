from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from maskinporten_guard import Settings
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer, SigningKey
from maskinporten_guard.verifier import SyncVerifier

CLIENT_ID = "demo-client"
CONSUMER = "889640782"
GRANTED = ("demo:read", "demo:write")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def client_key(maskinporten: FakeMaskinporten) -> SigningKey:
    """The key the registered client signs its assertions with."""
    return maskinporten.new_key()


@pytest.fixture
def server(
    maskinporten: FakeMaskinporten, client_key: SigningKey
) -> Iterator[IssuerServer]:
    """An issuer with one registered client, stopped afterwards."""
    with IssuerServer(maskinporten) as running:
        running.register_client(
            CLIENT_ID, client_key.private_key.public_key(), CONSUMER, GRANTED
        )
        yield running


def assertion(
    server: IssuerServer, key: SigningKey, *, kid: str | None = None, **claims: Any
) -> str:
    """A jwt-bearer grant as a client library builds one, with overrides."""
    now = int(time.time())
    body: dict[str, Any] = {
        "aud": server.url,
        "iss": CLIENT_ID,
        "scope": "demo:read",
        "iat": now,
        "exp": now + 100,
        "jti": str(uuid.uuid4()),
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"kid": kid} if kid else None

    return jwt.encode(body, key.private_key, algorithm="RS256", headers=headers)


def post(server: IssuerServer, data: dict[str, str]) -> httpx.Response:
    """Post a form to the token endpoint."""
    return httpx.post(server.token_endpoint, data=data, timeout=5)


def grant(server: IssuerServer, token: str) -> httpx.Response:
    """Post a jwt-bearer grant."""
    return post(server, {"grant_type": JWT_BEARER, "assertion": token})


def test_grant_issues_a_token_the_verifier_accepts(
    server: IssuerServer, client_key: SigningKey
) -> None:
    """A valid grant gets a token naming the client's consumer and scopes."""
    response = grant(
        server, assertion(server, client_key, scope="demo:read demo:write")
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 120
    assert body["scope"] == "demo:read demo:write"
    verifier = SyncVerifier(Settings.custom(server.url))
    try:
        identity = verifier.verify(body["access_token"])
    finally:
        verifier.close()
    assert identity.consumer_orgno == CONSUMER
    assert identity.scopes == {"demo:read", "demo:write"}
    assert identity.client_id == CLIENT_ID


def test_resource_becomes_the_audience(
    server: IssuerServer, client_key: SigningKey
) -> None:
    """A resource claim in the grant is the aud of the issued token."""
    token = assertion(server, client_key, resource="https://api.example.no/")
    body = grant(server, token).json()

    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://api.example.no/"


def test_client_is_found_by_kid(
    maskinporten: FakeMaskinporten, server: IssuerServer
) -> None:
    """A client registered with a JWK is selected by the assertion's kid."""
    key = maskinporten.new_key(kid="client-key-1")
    server.register_client("other", key.jwk(), "991825827", ["demo:read"])
    token = assertion(server, key, kid="client-key-1", iss="other")

    assert grant(server, token).status_code == 200


def test_reused_jti_is_refused(server: IssuerServer, client_key: SigningKey) -> None:
    """The same assertion is accepted once, then refused as a replay."""
    token = assertion(server, client_key)

    assert grant(server, token).status_code == 200
    second = grant(server, token)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert "jti" in second.json()["error_description"]


@pytest.mark.parametrize(
    ("claims", "error", "phrase"),
    [
        pytest.param({"aud": "https://elsewhere/"}, "invalid_grant", "aud", id="aud"),
        pytest.param({"aud": None}, "invalid_grant", "aud", id="no-aud"),
        pytest.param(
            {"scope": "demo:admin"}, "invalid_scope", "demo:admin", id="scope"
        ),
        pytest.param({"scope": None}, "invalid_scope", "no scope", id="no-scope"),
        pytest.param(
            {"exp": int(time.time()) + 600}, "invalid_grant", "longer", id="lifetime"
        ),
        pytest.param(
            {"iat": int(time.time()) - 300, "exp": int(time.time()) - 200},
            "invalid_grant",
            "expired",
            id="expired",
        ),
        pytest.param(
            {"iat": int(time.time()) + 300, "exp": int(time.time()) + 350},
            "invalid_grant",
            "future",
            id="iat-future",
        ),
        pytest.param({"jti": None}, "invalid_grant", "jti", id="no-jti"),
        pytest.param({"exp": None}, "invalid_grant", "exp", id="no-exp"),
        pytest.param({"iss": "stranger"}, "invalid_client", "client", id="unknown"),
    ],
)
def test_grant_refusals(
    server: IssuerServer,
    client_key: SigningKey,
    claims: dict[str, Any],
    error: str,
    phrase: str,
) -> None:
    """Each grant Maskinporten would refuse gets 400 and its OAuth error."""
    token = assertion(server, client_key, **claims)
    response = grant(server, token)

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert phrase in response.json()["error_description"]
    assert token not in response.text


def test_bad_signature_is_refused(
    maskinporten: FakeMaskinporten, server: IssuerServer
) -> None:
    """An assertion signed by another key than the client's is refused."""
    response = grant(server, assertion(server, maskinporten.new_key()))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "signature" in response.json()["error_description"]


def test_hmac_assertion_is_refused(server: IssuerServer) -> None:
    """An assertion with an HMAC alg never verifies, whatever its secret."""
    token = jwt.encode(
        {"iss": CLIENT_ID, "aud": server.url}, "secret-0123456789abcdef0123456789ab"
    )

    assert grant(server, token).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(
            {"grant_type": "client_credentials", "assertion": "x"},
            "unsupported_grant_type",
            id="grant-type",
        ),
        pytest.param({"assertion": "x"}, "unsupported_grant_type", id="no-grant"),
        pytest.param({"grant_type": JWT_BEARER}, "invalid_request", id="no-assertion"),
        pytest.param(
            {"grant_type": JWT_BEARER, "assertion": "not-a-jwt"},
            "invalid_request",
            id="garbage",
        ),
    ],
)
def test_request_refusals(
    server: IssuerServer, data: dict[str, str], error: str
) -> None:
    """Requests that are not a jwt-bearer grant get 400 and their error."""
    response = post(server, data)

    assert response.status_code == 400
    assert response.json()["error"] == error


def test_json_body_is_refused(server: IssuerServer) -> None:
    """The grant must be form-encoded, as RFC 6749 requires."""
    response = httpx.post(server.token_endpoint, json={"grant_type": JWT_BEARER})

    assert response.json()["error"] == "invalid_request"


def test_answers_are_not_cached(server: IssuerServer, client_key: SigningKey) -> None:
    """Token answers carry Cache-Control: no-store."""
    response = grant(server, assertion(server, client_key))

    assert response.headers["cache-control"] == "no-store"
