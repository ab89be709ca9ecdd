"""
Verify a Maskinporten access token: parse, find the key, check the signature
and the claims, and answer the verified `Identity`.

`Verifier` is for async code (ASGI); `SyncVerifier` for threads (WSGI). Both
run the same `_Core` and differ only in how they wait for a key. A token seen
before is answered from a bounded cache keyed by a hash of the token (see
`_Core.cache_key`), so a consumer that reuses its token for the token's
lifetime pays for one signature check (while more distinct tokens arrive
than the cache holds, only some new tokens are admitted: see `_Core._admits`);
`exp` is rechecked on every hit, and so is the presence of the signing key, so
a key withdrawn from the JWKS stops its cached tokens too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import httpx
from jwt.algorithms import RSAAlgorithm

from . import _fork
from .claims import IdentityReader
from .clock import Clock, system_clock
from .errors import InvalidSignature, MalformedToken, UnsupportedAlgorithm
from .identity import Identity
from .jws import ParsedToken, parse_compact
from .keys import AsyncKeySource, SyncKeySource, VerificationKey
from .metrics import Metrics, NullMetrics
from .settings import Settings

__all__ = ["AsyncKeys", "SyncKeys", "SyncVerifier", "Verifier", "VerifierStats"]

_ALGORITHMS = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "RS384": RSAAlgorithm(RSAAlgorithm.SHA384),
    "RS512": RSAAlgorithm(RSAAlgorithm.SHA512),
}


class AsyncKeys(Protocol):
    """Where an async verifier finds signing keys (see `keys.AsyncKeySource`)."""

    def cached(self, kid: str) -> VerificationKey | None:
        """The key for `kid` if it is at hand, without waiting."""

    async def get_key(self, kid: str) -> VerificationKey:
        """The key for `kid`, fetching the key set if needed."""

    async def prefetch(self) -> bool:
        """Fetch the key set now; False when that failed."""

    async def aclose(self) -> None:
        """Stop background work and close what the source opened."""


class SyncKeys(Protocol):
    """Where a sync verifier finds signing keys (see `keys.SyncKeySource`)."""

    def cached(self, kid: str) -> VerificationKey | None:
        """The key for `kid` if it is at hand, without waiting."""

    def get_key(self, kid: str) -> VerificationKey:
        """The key for `kid`, fetching the key set if needed."""

    def prefetch(self) -> bool:
        """Fetch the key set now; False when that failed."""

    def close(self) -> None:
        """Stop background work and close what the source opened."""


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """How the verified-token cache is doing."""

    cache_hits: int
    cache_misses: int
    cache_size: int
    cache_refused: int = 0


CacheKey = tuple[int, str]
_ADMISSION_WINDOW = 1024
_ADMIT_WHEN_THRASHING = 8
_NO_KEY: CacheKey = (0, "")


class _Core:
    """Everything about verification that does not wait for a key."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._algorithms = frozenset(settings.algorithms)
        self._reader = IdentityReader(settings)
        # A dict in insertion order: the oldest admitted token leaves first.
        # Reads take no lock (a dict lookup is atomic); writes do.
        self._cache: dict[CacheKey, Identity] | None = (
            {} if settings.token_cache_size else None
        )
        self._capacity = settings.token_cache_size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.refused_admission = 0
        self._hits_at_window = 0
        self._misses_at_window = 0
        self._admit_every = 1
        self._admit_count = 0
        _fork.reset_in_child(self)

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock at the fork.
        self._lock = threading.Lock()

    def cache_key(self, token: str) -> CacheKey:
        """
        The cache's key for a token, which is never the token itself.

        Python's string hash (keyed SipHash, with a key secret to this
        process) of the whole token, with the last 32 characters of its
        signature. A forged token hits another token's entry only if it has
        that token's signature tail and, blind to the process's key, the same
        64-bit hash. It costs a tenth of a SHA-256 over the token, which
        counts on a path that runs for every request.
        """
        if self._cache is None:
            return _NO_KEY

        return hash(token), token[-32:]

    def remembered(self, key: CacheKey) -> Identity | None:
        """
        The cached identity for a token, if it is still within its `exp`.

        The hit and miss counters are not locked: under threads they may
        undercount a little, which only blurs statistics.
        """
        cache = self._cache
        if cache is None:
            return None
        identity = cache.get(key)
        if identity is None:
            self.misses += 1
            return None
        if identity.expires_at <= self.clock() - self.settings.leeway:
            with self._lock:
                cache.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1

        return identity

    def known(self, token: str, keys: AsyncKeys | SyncKeys) -> Identity | None:
        """A remembered identity whose signing key is still published, or None."""
        identity = self.remembered(self.cache_key(token))
        if identity is not None and keys.cached(identity.kid):
            return identity

        return None

    def parse(self, token: str) -> ParsedToken:
        if not isinstance(token, str):
            raise MalformedToken("the token is not text")

        return parse_compact(
            token,
            algorithms=self._algorithms,
            max_bytes=self.settings.max_token_bytes,
        )

    def finish(
        self, cache_key: CacheKey, parsed: ParsedToken, key: VerificationKey
    ) -> Identity:
        """Check the signature and the claims, then remember the identity."""
        if key.alg is not None and key.alg != parsed.alg:
            raise UnsupportedAlgorithm(
                "the token's alg does not match the algorithm of its key"
            )
        algorithm = _ALGORITHMS[parsed.alg]
        if len(parsed.signature) * 8 != key.size or not algorithm.verify(
            parsed.signing_input, key.public_key, parsed.signature
        ):
            raise InvalidSignature("the token's signature does not verify")

        identity = self._reader.read(parsed.claims, self.clock(), parsed.kid)
        cache = self._cache
        if cache is not None:
            with self._lock:
                if self._admits():
                    if len(cache) >= self._capacity:
                        del cache[next(iter(cache))]
                    cache[cache_key] = identity

        return identity

    def _admits(self) -> bool:
        """
        Whether a newly verified token goes into the cache; called locked.

        Normally every one does. When more distinct tokens arrive than the
        cache holds, it thrashes: every entry is evicted before its token
        comes back, and the churn of inserting and evicting costs more than
        the cache saves. So the hit rate is looked at every
        `_ADMISSION_WINDOW` lookups; under 1 in 16, only one new token in
        `_ADMIT_WHEN_THRASHING` is kept (enough to notice when reuse
        returns), and every token again once the hit rate recovers.
        """
        looked = (self.hits - self._hits_at_window) + (
            self.misses - self._misses_at_window
        )
        if looked >= _ADMISSION_WINDOW:
            hits = self.hits - self._hits_at_window
            thrashing = hits * 16 < looked
            self._admit_every = _ADMIT_WHEN_THRASHING if thrashing else 1
            self._hits_at_window = self.hits
            self._misses_at_window = self.misses
        self._admit_count += 1
        if self._admit_count >= self._admit_every:
            self._admit_count = 0
            return True
        self.refused_admission += 1

        return False

    def stats(self) -> VerifierStats:
        size = len(self._cache) if self._cache is not None else 0

        return VerifierStats(self.hits, self.misses, size, self.refused_admission)


class Verifier:
    """
    Verify tokens in async code; one instance serves the whole application.

    Args:
        settings: the issuer and the rules to verify against.
        keys: where signing keys come from; by default an `AsyncKeySource`
            fetching the issuer's JWKS.
        clock: the time source, injectable for tests.
        metrics: where the key source reports its counters.
        client: an httpx client for the default key source to use.
    """

    def __init__(
        self,
        settings: Settings,
        keys: AsyncKeys | None = None,
        *,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.keys: AsyncKeys = keys or AsyncKeySource(
            settings, client=client, clock=clock, metrics=metrics or NullMetrics()
        )
        self._core = _Core(settings, clock)

    def verify_cached(self, token: str) -> Identity | None:
        """
        The identity of a token verified before and still valid, without waiting.

        None means "not known": call `verify`. Async callers on a hot path
        try this first, so a reused token costs no coroutine at all.
        """
        return self._core.known(token, self.keys)

    async def verify(self, token: str) -> Identity:
        """
        Verify `token` and answer who it speaks for.

        Raises:
            InvalidToken: the token is not acceptable (a 401).
            ConsumerNotAllowed: the consumer is outside `allowed_consumers`.
            KeysUnavailable: no usable signing keys could be had (a 503).
        """
        identity = self._core.known(token, self.keys)
        if identity is not None:
            return identity

        return await self.verify_uncached(token)

    def verify_at_hand(self, token: str) -> Identity | None:
        """
        Verify `token` in full if its key is at hand, without waiting; else None.

        For hot paths after `verify_cached` missed: a new token signed with a
        known key is verified here with no coroutine; None means its key has
        to be fetched, so call `verify_uncached`. Raises the errors of
        `verify` for a bad token.
        """
        core = self._core
        parsed = core.parse(token)
        key = self.keys.cached(parsed.kid)
        if key is None:
            return None

        return core.finish(core.cache_key(token), parsed, key)

    async def verify_uncached(self, token: str) -> Identity:
        """
        Verify `token` in full and remember it; for callers that tried the cache.

        Raises the errors of `verify`.
        """
        core = self._core
        parsed = core.parse(token)
        key = self.keys.cached(parsed.kid) or await self.keys.get_key(parsed.kid)

        return core.finish(core.cache_key(token), parsed, key)

    async def prefetch(self) -> bool:
        """Fetch the key set now; answers False (and logs) when it fails."""
        return await self.keys.prefetch()

    async def aclose(self) -> None:
        """Stop background refreshes and close the clients this verifier made."""
        await self.keys.aclose()

    def stats(self) -> VerifierStats:
        """Hits and misses of the verified-token cache."""
        return self._core.stats()


class SyncVerifier:
    """
    Verify tokens in threaded code (WSGI); thread-safe, one per process.

    Args:
        settings: the issuer and the rules to verify against.
        keys: where signing keys come from; by default a `SyncKeySource`.
        clock: the time source, injectable for tests.
        metrics: where the key source reports its counters.
        client: an httpx client for the default key source to use.
    """

    def __init__(
        self,
        settings: Settings,
        keys: SyncKeys | None = None,
        *,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.keys: SyncKeys = keys or SyncKeySource(
            settings, client=client, clock=clock, metrics=metrics or NullMetrics()
        )
        self._core = _Core(settings, clock)

    def verify_cached(self, token: str) -> Identity | None:
        """The identity of a token verified before and still valid, or None."""
        return self._core.known(token, self.keys)

    def verify(self, token: str) -> Identity:
        """
        Verify `token` and answer who it speaks for.

        Raises:
            InvalidToken: the token is not acceptable (a 401).
            ConsumerNotAllowed: the consumer is outside `allowed_consumers`.
            KeysUnavailable: no usable signing keys could be had (a 503).
        """
        identity = self._core.known(token, self.keys)
        if identity is not None:
            return identity

        return self.verify_uncached(token)

    def verify_uncached(self, token: str) -> Identity:
        """
        Verify `token` in full and remember it; for callers that tried the cache.

        Raises the errors of `verify`.
        """
        core = self._core
        parsed = core.parse(token)
        key = self.keys.cached(parsed.kid) or self.keys.get_key(parsed.kid)

        return core.finish(core.cache_key(token), parsed, key)

    def prefetch(self) -> bool:
        """Fetch the key set now; answers False (and logs) when it fails."""
        return self.keys.prefetch()

    def close(self) -> None:
        """Stop background refreshes and close the clients this verifier made."""
        self.keys.close()

    def stats(self) -> VerifierStats:
        """Hits and misses of the verified-token cache."""
        return self._core.stats()
