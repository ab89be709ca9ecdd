"""
The behaviour both example APIs promise, as one table.

`examples/fastapi_app` and `examples/flask_app` expose the same four routes;
their tests run every case here against each, so the two never drift apart.
A case names the request, how to build its token from a `FakeMaskinporten`,
and the status and RFC 6750 error code the API must answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from maskinporten_guard.testing import FakeMaskinporten

DEMO_WRITER = "991825827"
OTHER_CONSUMER = "889640782"
READ = "demo:inspections.read"
WRITE = "demo:inspections.write"

TokenFactory = Callable[[FakeMaskinporten], str | None]


@dataclass(frozen=True)
class Case:
    """One request against an example API and the answer it must get."""

    method: str
    path: str
    token: TokenFactory
    status: int
    error: str | None = None


def _expired(fake: FakeMaskinporten) -> str:
    return fake.mint(READ, issued_at=fake.clock() - 600)


def _forged(fake: FakeMaskinporten) -> str:
    return fake.mint(READ, key=fake.new_key(kid=fake.current_key.kid))


CASES = [
    pytest.param(Case("GET", "/health", lambda f: None, 200), id="health-public"),
    pytest.param(Case("GET", "/me", lambda f: None, 401), id="me-no-token"),
    pytest.param(Case("GET", "/me", lambda f: f.mint(READ), 200), id="me-valid"),
    pytest.param(Case("GET", "/me", _expired, 401, "invalid_token"), id="me-expired"),
    pytest.param(Case("GET", "/me", _forged, 401, "invalid_token"), id="me-forged"),
    pytest.param(
        Case("GET", "/inspections/42", lambda f: f.mint(READ), 200), id="read-ok"
    ),
    pytest.param(
        Case(
            "GET", "/inspections/42", lambda f: f.mint(WRITE), 403, "insufficient_scope"
        ),
        id="read-without-scope",
    ),
    pytest.param(
        Case(
            "GET",
            "/inspections/42",
            lambda f: f.mint(READ + ".all"),
            403,
            "insufficient_scope",
        ),
        id="read-lookalike-scope",
    ),
    pytest.param(
        Case("POST", "/inspections", lambda f: f.mint(WRITE, DEMO_WRITER), 201),
        id="write-ok",
    ),
    pytest.param(
        Case(
            "POST",
            "/inspections",
            lambda f: f.mint(WRITE, OTHER_CONSUMER),
            403,
            "insufficient_scope",
        ),
        id="write-other-consumer",
    ),
    pytest.param(
        Case(
            "POST",
            "/inspections",
            lambda f: f.mint(WRITE, OTHER_CONSUMER, supplier=DEMO_WRITER),
            403,
            "insufficient_scope",
        ),
        id="write-supplier-is-not-consumer",
    ),
    pytest.param(
        Case("POST", "/inspections", lambda f: f.mint(READ, DEMO_WRITER), 403),
        id="write-without-scope",
    ),
]
"""Pass to `pytest.mark.parametrize("case", CASES)`."""
