"""
Key sources that read a `FakeMaskinporten`'s keys directly, with no HTTP.

For unit tests of code that takes a verifier or a guard: the keys follow the
fake as it rotates, and nothing is fetched, cached or timed.
"""

from __future__ import annotations

from typing import Any

from ..errors import UnknownKey
from ..keys import VerificationKey
from ._issuer import FakeMaskinporten

__all__ = ["AsyncStaticKeys", "StaticKeys"]


class StaticKeys:
    """A sync key source over a fake issuer's published keys."""

    def __init__(self, fake: FakeMaskinporten) -> None:
        self.fake = fake
        self.lookups = 0
        self._published: list[Any] | None = None
        self._keys: dict[str, VerificationKey] = {}

    def cached(self, kid: str) -> VerificationKey | None:
        """The published key with this kid, if any."""
        published = self.fake.keys
        if published is not self._published or len(published) != len(self._keys):
            # The fake replaces its key list when it rotates; rebuild then.
            self._keys = {
                key.kid: VerificationKey(
                    key.kid,
                    key.private_key.public_key(),
                    "RS256",
                    key.private_key.key_size,
                )
                for key in published
            }
            self._published = published

        return self._keys.get(kid)

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
