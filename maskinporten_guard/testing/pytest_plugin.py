"""
Pytest fixtures for testing an API protected by maskinporten-guard.

Loaded automatically once maskinporten-guard is installed:

- `maskinporten`: a `FakeMaskinporten` that mints production-shaped tokens.
- `maskinporten_server`: an `IssuerServer` serving that fake over HTTP on
  127.0.0.1; the fake's issuer is the server's URL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._issuer import FakeMaskinporten
from ._server import IssuerServer


@pytest.fixture
def maskinporten() -> FakeMaskinporten:
    """A fake Maskinporten issuer for this test, with one published key."""
    return FakeMaskinporten()


@pytest.fixture
def maskinporten_server(maskinporten: FakeMaskinporten) -> Iterator[IssuerServer]:
    """A started `IssuerServer` for the `maskinporten` fake, stopped afterwards."""
    with IssuerServer(maskinporten) as server:
        yield server
