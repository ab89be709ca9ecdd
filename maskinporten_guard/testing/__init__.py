"""
A testing kit for APIs protected by maskinporten-guard.

`FakeMaskinporten` makes keys and mints tokens shaped exactly like the ones
Maskinporten issues; `IssuerServer` serves its metadata and key set over real
HTTP on 127.0.0.1. The pytest plugin (loaded automatically once the package is
installed) offers them as fixtures.
"""

from __future__ import annotations

from ._issuer import OMIT, FakeMaskinporten, SigningKey, b64url, jwk_thumbprint, org
from ._server import IssuerServer, RegisteredClient

__all__ = [
    "OMIT",
    "FakeMaskinporten",
    "IssuerServer",
    "RegisteredClient",
    "SigningKey",
    "b64url",
    "jwk_thumbprint",
    "org",
]
