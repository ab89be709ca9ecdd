"""
Pytest fixtures for testing an API protected by maskinporten-guard.

Loaded automatically once maskinporten-guard is installed:

- `maskinporten`: a `FakeMaskinporten` that mints production-shaped tokens.
"""

from __future__ import annotations

import pytest

from ._issuer import FakeMaskinporten


@pytest.fixture
def maskinporten() -> FakeMaskinporten:
    """A fake Maskinporten issuer for this test, with one published key."""
    return FakeMaskinporten()
