"""
A testing kit for APIs protected by maskinporten-guard.

`FakeMaskinporten` makes keys and mints tokens shaped exactly like the ones
Maskinporten issues; `IssuerServer` serves its metadata and key set over real
HTTP on 127.0.0.1; `StaticKeys` and `AsyncStaticKeys` hand its keys to a
verifier with no HTTP at all. The pytest plugin (loaded automatically once the
package is installed) offers them as fixtures.
"""

from __future__ import annotations

from ._issuer import OMIT, FakeMaskinporten, SigningKey, b64url, jwk_thumbprint, org
from ._keys import AsyncStaticKeys, StaticKeys
from ._server import IssuerServer, RegisteredClient

__all__ = [
    "OMIT",
    "AsyncStaticKeys",
    "FakeMaskinporten",
    "IssuerServer",
    "RegisteredClient",
    "SigningKey",
    "StaticKeys",
    "b64url",
    "jwk_thumbprint",
    "org",
]
