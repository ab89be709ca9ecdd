"""
Key sources that read a `FakeMaskinporten`'s keys directly, with no HTTP.

For unit tests of code that takes a verifier or a guard: the keys follow the
fake as it rotates, and nothing is fetched, cached or timed.
"""

from __future__ import annotations

from ..errors import UnknownKey
from ..keys import VerificationKey
from ._issuer import FakeMaskinporten

__all__ = ["AsyncStaticKeys", "StaticKeys"]


class StaticKeys:
    """A sync key source over a fake issuer's published keys."""

    def __init__(self, fake: FakeMaskinporten) -> None:
        self.fake = fake
        self.lookups = 0

    def cached(self, kid: str) -> VerificationKey | None:
        """The published key with this kid, if any."""
        for key in self.fake.keys:
            if key.kid == kid:
                public = key.private_key.public_key()
                return VerificationKey(kid, public, "RS256", public.key_size)

        return None

    def get_key(self, kid: str) -> VerificationKey:
        """The published key with this kid, or `UnknownKey`."""
        self.lookups += 1
        key = self.cached(kid)
        if key is None:
            raise UnknownKey("no published key has the token's kid")

        return key

    def prefetch(self) -> bool:
        """Nothing to fetch."""
        return True

    def close(self) -> None:
        """Nothing to close."""


class AsyncStaticKeys:
    """An async key source over a fake issuer's published keys."""

    def __init__(self, fake: FakeMaskinporten) -> None:
        self._keys = StaticKeys(fake)

    @property
    def lookups(self) -> int:
        """How often the slow path was taken."""
        return self._keys.lookups

    def cached(self, kid: str) -> VerificationKey | None:
        """The published key with this kid, if any."""
        return self._keys.cached(kid)

    async def get_key(self, kid: str) -> VerificationKey:
        """The published key with this kid, or `UnknownKey`."""
        return self._keys.get_key(kid)

    async def prefetch(self) -> bool:
        """Nothing to fetch."""
        return True

    async def aclose(self) -> None:
        """Nothing to close."""
