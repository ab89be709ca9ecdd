"""
The issuer's signing keys: fetched, checked, cached, refreshed ahead of time.

`parse_jwks` turns a JWKS document into a `KeySet` of usable RSA public keys.
`AsyncKeySource` (asyncio, `httpx.AsyncClient`) and `SyncKeySource` (threads,
`httpx.Client`) keep the current key set and hand keys to the verifier. Both
are thin IO shells over one sans-IO `_KeyCache` that makes every decision:

- a lookup on the hot path (`cached`) reads a dict and never waits; when the
  key set is older than about 90% of `refresh_interval` it starts one refresh
  in the background and still answers from the current set;
- a cold start or an unknown `kid` fetches once for all concurrent callers;
  unknown `kid`s cause at most one fetch per `unknown_kid_cooldown`, and a
  request that arrives inside the cooldown is answered `UnknownKey` at once;
- a failed fetch never wipes the cache: the last good key set serves until it
  is `max_staleness` old, then requests get `KeysUnavailable` (503); failed
  fetches are themselves spaced by `unknown_kid_cooldown`.

Fetches are hardened: https only (http only on a loopback address), no
redirects, `Accept-Encoding: identity` and any other `Content-Encoding`
refused, a byte cap (`max_jwks_bytes`) enforced while streaming, per-phase
timeouts and a total deadline (`fetch_timeout`) that a slow drip cannot defeat.

Metrics reported through the `Metrics` hook:

- `key_fetches` (counter, label `outcome`: `ok` or `error`): key set fetches.
- `key_fetch_seconds` (observation): wall time of each fetch.
- `key_set_age_seconds` (gauge): age of the key set in use, set on every fetch
  outcome and on `status()`.
- `key_set_size` (gauge): usable keys in the current set.
- `keys_skipped` (counter): unusable JWKS entries skipped while parsing.
- `unknown_kid` (counter, label `outcome`: `refetch`, `cooldown`, `cached`):
  lookups of a `kid` the key set does not have, and what was done about it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from . import _fork
from ._strict_json import StrictJSONError, parse_object
from .clock import Clock, system_clock
from .errors import (
    ConfigurationError,
    KeyFetchError,
    KeysUnavailable,
    UnknownKey,
    safe_text,
)
from .metrics import Metrics, NullMetrics
from .settings import SUPPORTED_ALGORITHMS, Settings, check_url

__all__ = [
    "AsyncKeySource",
    "KeySet",
    "KeySourceStatus",
    "SyncKeySource",
    "VerificationKey",
    "parse_jwks",
]

logger = logging.getLogger("maskinporten_guard.keys")

MIN_RSA_BITS = 2048
"""Smaller moduli are skipped (NIST SP 800-131A)."""

MAX_RSA_BITS = 16384
"""Larger moduli are skipped: verifying with them costs too much CPU per token."""

REFRESH_AHEAD = 0.9
"""A scheduled refresh starts at this fraction of `refresh_interval`."""

_NEGATIVE_CACHE_SIZE = 1024
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_JSON_TYPES = frozenset({"application/json", "application/jwk-set+json"})
_REQUEST_HEADERS = {
    "Accept": "application/jwk-set+json, application/json",
    "Accept-Encoding": "identity",
}
_NULL_METRICS = NullMetrics()


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """
    One usable RSA public key from the issuer's key set.

    Args:
        kid: the key id tokens name in their header.
        public_key: the key, ready for signature verification.
        alg: the JWK's `alg` when it states one; a token whose `alg` differs
            must be refused.
        size: the modulus length in bits.
    """

    kid: str
    public_key: RSAPublicKey
    alg: str | None
    size: int


@dataclass(frozen=True, slots=True)
class KeySet:
    """
    The usable keys of one fetched JWKS document.

    Args:
        keys: the keys by `kid`.
        fetched_at: when the document was fetched (clock seconds).
        skipped: entries of the document that were not usable.
    """

    keys: Mapping[str, VerificationKey]
    fetched_at: float
    skipped: int


@dataclass(frozen=True, slots=True)
class KeySourceStatus:
    """
    What a key source knows, for health checks and operators.

    Args:
        kids: the key ids in the current key set, sorted.
        age: seconds since the current key set was fetched, or None.
        fetches: key set fetches attempted so far.
        failures: fetches that failed.
        last_error: what the latest failed fetch said, or None.
    """

    kids: tuple[str, ...]
    age: float | None
    fetches: int
    failures: int
    last_error: str | None


class _Unusable(Exception):
    """One JWKS entry cannot be used; the message says why."""


def parse_jwks(data: bytes, *, fetched_at: float) -> KeySet:
    """
    Parse a JWKS document into the usable keys it holds.

    Entries that cannot be used safely are skipped with a warning naming their
    `kid`: keys that are not RSA, not for signatures, private, weaker than
    2048 bits, with an odd exponent or an `alg` outside RS256/RS384/RS512.
    Two entries with the same `kid` are both skipped, since a token naming
    that `kid` could mean either.

    Args:
        data: the raw document.
        fetched_at: when it was fetched, recorded in the key set.

    Raises:
        KeyFetchError: the document is not a JWKS, or holds no usable key.
    """
    document = _json_object(data, "key set")
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeyFetchError('the key set has no "keys" list; is this a JWKS?')

    kid_counts = Counter(
        e["kid"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("kid"), str)
    )
    keys: dict[str, VerificationKey] = {}
    skipped = 0
    for entry in entries:
        try:
            key = _verification_key(entry)
        except _Unusable as exc:
            skipped += 1
            logger.warning("skipping key set entry: %s", exc)
            continue
        if kid_counts[key.kid] > 1:
            skipped += 1
            logger.warning(
                "skipping key kid=%s: the kid appears twice", safe_text(key.kid)
            )
            continue
        keys[key.kid] = key
    if not keys:
        raise KeyFetchError(
            f"the key set holds no usable RSA signing key ({skipped} skipped)"
        )

    return KeySet(keys, fetched_at, skipped)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """Decode strict JSON: UTF-8, no NaN, no repeated member names."""
    try:
        return parse_object(data)
    except StrictJSONError as exc:
        raise KeyFetchError(f"the {what} {exc.problem}") from None


def _verification_key(entry: object) -> VerificationKey:
    """Check one JWK and load it as a public key, or raise `_Unusable`."""
    if not isinstance(entry, dict):
        raise _Unusable("an entry is not a JSON object")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _Unusable("an entry has no string kid")
    label = f"kid={safe_text(kid)}"
    if entry.get("kty") != "RSA":
        raise _Unusable(f"{label} is not an RSA key")
    if "use" in entry and entry["use"] != "sig":
        raise _Unusable(f"{label} is not for signatures (use)")
    ops = entry.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise _Unusable(f"{label} is not for verification (key_ops)")
    alg = entry.get("alg")
    if alg is not None and alg not in SUPPORTED_ALGORITHMS:
        raise _Unusable(f"{label} states an unsupported alg")
    if _PRIVATE_MEMBERS & entry.keys():
        raise _Unusable(f"{label} carries private key material")

    modulus = _uint(entry.get("n"), label, "n")
    exponent = _uint(entry.get("e"), label, "e")
    if not MIN_RSA_BITS <= modulus.bit_length() <= MAX_RSA_BITS:
        raise _Unusable(f"{label} has a {modulus.bit_length()}-bit modulus")
    if exponent < 3 or exponent % 2 == 0 or exponent.bit_length() > 32:
        raise _Unusable(f"{label} has an unsafe exponent")
    try:
        public_key = RSAAlgorithm.from_jwk(
            {"kty": "RSA", "n": entry["n"], "e": entry["e"]}
        )
    except (InvalidKeyError, ValueError, TypeError) as exc:
        raise _Unusable(f"{label} cannot be loaded") from exc
    if not isinstance(public_key, RSAPublicKey):
        raise _Unusable(f"{label} is not a public key")

    return VerificationKey(kid, public_key, alg, public_key.key_size)


def _uint(value: object, label: str, member: str) -> int:
    """Decode a base64url unsigned integer as RFC 7518 section 6.3.1 writes it."""
    if not isinstance(value, str) or not value or "=" in value:
        raise _Unusable(f"{label} has no valid {member!r}")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _Unusable(f"{label} has no valid {member!r}") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        raise _Unusable(f"{label} has no valid {member!r}")

    return int.from_bytes(raw, "big")


class _KeyCache:
    """
    Every decision about the key set, with no IO: the shells do the fetching.

    The hot path reads `keys`, `refresh_at` and `stale_at` without a lock;
    each is replaced by a single assignment, so a reader sees either the old
    or the new value. Mutating methods are called by one fetcher at a time.
    """

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.key_set: KeySet | None = None
        self.keys: Mapping[str, VerificationKey] = {}
        self.refresh_at = float("inf")
        self.stale_at = float("-inf")
        self.next_attempt = float("-inf")
        self.in_flight = False
        self.unknown: dict[str, float] = {}
        self.fetches = 0
        self.failures = 0
        self.last_error: str | None = None

    def refresh_due(self, now: float) -> bool:
        """Tell whether a background refresh should start now."""
        return (
            self.key_set is not None
            and not self.in_flight
            and now >= self.refresh_at
            and now >= self.next_attempt
        )

    def plan(self, kid: str, now: float) -> VerificationKey | None:
        """
        Answer a lookup that missed the hot path, or None to fetch (or join one).

        Raises:
            UnknownKey: the key set is fresh but has no such `kid`, and no
                refetch is allowed yet.
            KeysUnavailable: no fresh key set and no fetch allowed yet.
        """
        if now < self.stale_at:
            key = self.keys.get(kid)
            if key is not None:
                return key
            if self.unknown.get(kid, float("-inf")) > now:
                self.metrics.increment("unknown_kid", outcome="cached")
                raise _unknown(kid)
            if not self.in_flight and now < self.next_attempt:
                self.metrics.increment("unknown_kid", outcome="cooldown")
                raise _unknown(kid)
            self.metrics.increment("unknown_kid", outcome="refetch")
            return None
        if self.in_flight or now >= self.next_attempt:
            return None
        raise self._unavailable(now)

    def settle(self, kid: str, now: float) -> VerificationKey:
        """Answer a lookup after the fetch it waited for."""
        if now >= self.stale_at:
            raise self._unavailable(now)
        key = self.keys.get(kid)
        if key is not None:
            return key
        if len(self.unknown) >= _NEGATIVE_CACHE_SIZE:
            self.unknown.clear()
        self.unknown[kid] = now + self.settings.unknown_kid_cooldown

        raise _unknown(kid)

    def begin(self, now: float) -> None:
        """Record that a fetch starts; no other starts within the cooldown."""
        self.in_flight = True
        self.fetches += 1
        self.next_attempt = now + self.settings.unknown_kid_cooldown
        # Until this fetch is over, and after a failure, the hot path need not
        # look again before the cooldown ends.
        self.refresh_at = max(self.refresh_at, self.next_attempt)

    def accept(self, data: bytes, now: float) -> None:
        """
        Install a fetched document as the key set, if it parses completely.

        Raises:
            KeyFetchError: the document is unusable; the old key set stays.
        """
        key_set = parse_jwks(data, fetched_at=now)
        self.key_set = key_set
        self.keys = dict(key_set.keys)
        self.refresh_at = now + self.settings.refresh_interval * REFRESH_AHEAD
        self.stale_at = now + self.settings.max_staleness
        self.unknown.clear()
        self.metrics.increment("key_fetches", outcome="ok")
        self.metrics.increment("keys_skipped", key_set.skipped)
        self.metrics.set("key_set_size", len(key_set.keys))
        self.metrics.set("key_set_age_seconds", 0.0)
        logger.info(
            "key set fetched: %d keys, %d skipped", len(self.keys), key_set.skipped
        )

    def fail(self, error: KeyFetchError, now: float) -> None:
        """Record a failed fetch; the current key set keeps serving."""
        self.failures += 1
        self.last_error = str(error)
        self.metrics.increment("key_fetches", outcome="error")
        age = self.age(now)
        if age is not None:
            self.metrics.set("key_set_age_seconds", age)
        logger.warning(
            "key set fetch failed (%s); key set age %s s, next attempt in %.0f s",
            error,
            "none" if age is None else f"{age:.0f}",
            self.next_attempt - now,
        )

    def end(self) -> None:
        """Record that the fetch in flight is over, whatever its outcome."""
        self.in_flight = False

    def age(self, now: float) -> float | None:
        """Seconds since the current key set was fetched, or None."""
        if self.key_set is None:
            return None

        return now - self.key_set.fetched_at

    def status(self, now: float) -> KeySourceStatus:
        """Summarise the cache for operators."""
        age = self.age(now)
        if age is not None:
            self.metrics.set("key_set_age_seconds", age)

        return KeySourceStatus(
            tuple(sorted(self.keys)), age, self.fetches, self.failures, self.last_error
        )

    def _unavailable(self, now: float) -> KeysUnavailable:
        retry = max(1, int(self.next_attempt - now) + 1)
        if self.key_set is None:
            reason = "the issuer's signing keys could not be fetched yet"
        else:
            reason = "the issuer's signing keys are too old and cannot be refreshed"

        return KeysUnavailable(f"{reason}; try again later", retry_after=retry)


def _unknown(kid: str) -> UnknownKey:
    return UnknownKey(f"no published signing key has kid {safe_text(kid)}")


def _checked_url(url: str, setting: str = "jwks_uri") -> str:
    try:
        return check_url(setting, url)
    except ConfigurationError as exc:
        raise KeyFetchError(str(exc)) from exc


def _request_options(settings: Settings) -> dict[str, Any]:
    """Per-request options, so that a caller's own client is hardened too."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )

    return {"headers": _REQUEST_HEADERS, "timeout": timeout, "follow_redirects": False}


def _check_response(response: httpx.Response, url: str, limit: int) -> None:
    """
    Refuse a response before reading its body.

    Only the identity encoding passes, so the body read afterwards is the raw
    bytes that came over the wire: a compressed bomb is never expanded.
    """
    if 300 <= response.status_code < 400:
        raise KeyFetchError(f"{url} answered a redirect; redirects are not followed")
    if response.status_code != 200:
        raise KeyFetchError(f"{url} answered HTTP {response.status_code}")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise KeyFetchError(f"{url} answered with Content-Encoding {encoding!r}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES:
        raise KeyFetchError(f"{url} answered {media_type or 'no'} content type")
    length = response.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise KeyFetchError(f"{url} announced more than max_jwks_bytes ({limit})")


class _Body:
    """Collects a response body and refuses it as soon as it exceeds the cap."""

    def __init__(self, url: str, limit: int) -> None:
        self.url = url
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise KeyFetchError(
                f"{self.url} sent more than max_jwks_bytes ({self.limit})"
            )
        self.chunks.append(chunk)

    def data(self) -> bytes:
        return b"".join(self.chunks)


@contextlib.contextmanager
def _fetch_errors(url: str, settings: Settings) -> Iterator[None]:
    """The one boundary where foreign exceptions become `KeyFetchError`."""
    try:
        yield
    except TimeoutError as exc:
        raise KeyFetchError(
            f"fetching {url} took longer than fetch_timeout "
            f"({settings.fetch_timeout} s)"
        ) from exc
    except httpx.HTTPError as exc:
        raise KeyFetchError(f"fetching {url} failed: {type(exc).__name__}") from exc
    except OSError as exc:
        raise KeyFetchError(f"fetching {url} failed: {type(exc).__name__}") from exc


async def _fetch_async(
    client: httpx.AsyncClient, url: str, settings: Settings
) -> bytes:
    """GET one document, hardened; the whole fetch is bounded by fetch_timeout."""
    url = _checked_url(url)
    body = _Body(url, settings.max_jwks_bytes)
    with _fetch_errors(url, settings):
        async with asyncio.timeout(settings.fetch_timeout):
            request = client.stream("GET", url, **_request_options(settings))
            async with request as response:
                _check_response(response, url, settings.max_jwks_bytes)
                async for chunk in response.aiter_bytes():
                    body.add(chunk)

    return body.data()


def _fetch_sync(client: httpx.Client, url: str, settings: Settings) -> bytes:
    """
    GET one document, hardened, checking the deadline between chunks.

    A single read blocks for at most `read_timeout`, so a fetch ends within
    `connect_timeout + fetch_timeout + read_timeout` however slowly it drips.
    """
    url = _checked_url(url)
    body = _Body(url, settings.max_jwks_bytes)
    deadline = time.monotonic() + settings.fetch_timeout
    request = client.stream("GET", url, **_request_options(settings))
    with _fetch_errors(url, settings), request as response:
        _check_response(response, url, settings.max_jwks_bytes)
        for chunk in response.iter_bytes():
            body.add(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError

    return body.data()


def _jwks_uri_from_metadata(data: bytes, settings: Settings) -> str:
    """Take `jwks_uri` from RFC 8414 metadata whose `issuer` matches exactly."""
    document = _json_object(data, "issuer metadata")
    if document.get("issuer") != settings.issuer:
        raise KeyFetchError(
            f"the metadata at {settings.metadata_uri} names issuer "
            f"{safe_text(document.get('issuer'))}, not {settings.issuer}; "
            "check the issuer setting"
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise KeyFetchError(f"the metadata at {settings.metadata_uri} has no jwks_uri")

    return _checked_url(jwks_uri, "the metadata's jwks_uri")


class AsyncKeySource:
    """
    The issuer's keys for asyncio applications; no request waits on a refresh.

    Create one per process and share it. Fetches run as asyncio tasks on the
    running loop, so use a source from one event loop only.

    Args:
        settings: where the keys are and how long they may be kept.
        client: an httpx client to fetch with; hardened per request. When None
            the source makes one and closes it in `aclose`.
        clock: the time used for every cache decision.
        metrics: where fetch counts and ages are reported.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock = system_clock,
        metrics: Metrics = _NULL_METRICS,
    ) -> None:
        self._settings = settings
        self._core = _KeyCache(settings, clock, metrics)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._jwks_uri = settings.jwks_uri
        self._flight: asyncio.Task[bool] | None = None

    def cached(self, kid: str) -> VerificationKey | None:
        """
        The key for `kid` from a fresh enough key set, or None; never waits.

        Starts a background refresh when one is due.
        """
        core = self._core
        now = core.clock()
        if now >= core.refresh_at and core.refresh_due(now):
            with contextlib.suppress(RuntimeError):
                self._start_fetch()
        if now >= core.stale_at:
            return None

        return core.keys.get(kid)

    async def get_key(self, kid: str) -> VerificationKey:
        """
        The key for `kid`, fetching the key set when the rules allow it.

        Raises:
            UnknownKey: the issuer publishes no key with this `kid`.
            KeysUnavailable: there is no fresh key set and none can be fetched.
        """
        key = self.cached(kid)
        if key is not None:
            return key
        key = self._core.plan(kid, self._core.clock())
        if key is not None:
            return key
        await asyncio.shield(self._start_fetch())

        return self._core.settle(kid, self._core.clock())

    async def prefetch(self) -> bool:
        """Fetch the key set now (or join the fetch in flight); True on success."""
        return await asyncio.shield(self._start_fetch())

    async def aclose(self) -> None:
        """Cancel the fetch in flight and close the client if this source made it."""
        flight = self._flight
        if flight is not None and not flight.done():
            flight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flight
            self._core.end()
        if self._owns_client:
            await self._client.aclose()

    def status(self) -> KeySourceStatus:
        """What this source knows, for a health check."""
        return self._core.status(self._core.clock())

    def _start_fetch(self) -> asyncio.Task[bool]:
        """The fetch in flight, or a new one: one fetch at a time."""
        flight = self._flight
        if flight is None or flight.done():
            flight = asyncio.get_running_loop().create_task(self._fetch())
            self._core.begin(self._core.clock())
            self._flight = flight

        return flight

    async def _fetch(self) -> bool:
        core = self._core
        started = time.monotonic()
        try:
            if self._jwks_uri is None:
                metadata_uri = self._settings.metadata_uri
                metadata = await _fetch_async(
                    self._client, metadata_uri, self._settings
                )
                self._jwks_uri = _jwks_uri_from_metadata(metadata, self._settings)
            data = await _fetch_async(self._client, self._jwks_uri, self._settings)
            core.accept(data, core.clock())
        except KeyFetchError as exc:
            core.fail(exc, core.clock())
            return False
        finally:
            core.end()
            core.metrics.observe("key_fetch_seconds", time.monotonic() - started)

        return True


class SyncKeySource:
    """
    The issuer's keys for threaded WSGI servers; thread-safe.

    One fetch runs at a time per source; threads that need it wait for the
    same fetch. Scheduled refreshes run in a daemon thread. A fetch ends
    within `connect_timeout + fetch_timeout + read_timeout`.

    Args:
        settings: where the keys are and how long they may be kept.
        client: an httpx client to fetch with; hardened per request. When None
            the source makes one and closes it in `close`.
        clock: the time used for every cache decision.
        metrics: where fetch counts and ages are reported.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.Client | None = None,
        clock: Clock = system_clock,
        metrics: Metrics = _NULL_METRICS,
    ) -> None:
        self._settings = settings
        self._core = _KeyCache(settings, clock, metrics)
        self._owns_client = client is None
        self._client = client or httpx.Client(follow_redirects=False)
        self._jwks_uri = settings.jwks_uri
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self._wait = (
            settings.connect_timeout + settings.fetch_timeout + settings.read_timeout
        )
        _fork.reset_in_child(self)

    def cached(self, kid: str) -> VerificationKey | None:
        """
        The key for `kid` from a fresh enough key set, or None; never waits.

        Starts a background refresh thread when one is due.
        """
        core = self._core
        now = core.clock()
        if now >= core.refresh_at:
            self._refresh_in_background(now)
        if now >= core.stale_at:
            return None

        return core.keys.get(kid)

    def get_key(self, kid: str) -> VerificationKey:
        """
        The key for `kid`, fetching the key set when the rules allow it.

        Raises:
            UnknownKey: the issuer publishes no key with this `kid`.
            KeysUnavailable: there is no fresh key set and none can be fetched.
        """
        key = self.cached(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._core.plan(kid, self._core.clock())
            if key is not None:
                return key
            flight, leader = self._join_or_lead()
        if leader:
            self._fetch(flight)
        else:
            flight.done.wait(self._wait)
        with self._lock:
            return self._core.settle(kid, self._core.clock())

    def prefetch(self) -> bool:
        """Fetch the key set now (or wait for the fetch in flight); True on success."""
        with self._lock:
            flight, leader = self._join_or_lead()
        if leader:
            return self._fetch(flight)
        flight.done.wait(self._wait)

        return flight.ok

    def close(self) -> None:
        """Close the client if this source made it; a fetch in flight fails."""
        if self._owns_client:
            self._client.close()

    def status(self) -> KeySourceStatus:
        """What this source knows, for a health check."""
        with self._lock:
            return self._core.status(self._core.clock())

    def _after_fork(self) -> None:
        """
        Make this source the child's own after a fork.

        The parent's fetch in flight has no thread here and its pooled
        connections belong to the parent: drop both (without closing them,
        which would cut the parent's), and allow a fetch at once.
        """
        self._lock = threading.Lock()
        self._flight = None
        self._core.end()
        self._core.next_attempt = float("-inf")
        if self._owns_client:
            self._client = httpx.Client(follow_redirects=False)
        else:
            logger.warning(
                "a key source with a caller's httpx client was forked; the "
                "client's connections are now shared with the parent process"
            )

    def _refresh_in_background(self, now: float) -> None:
        with self._lock:
            if not self._core.refresh_due(now):
                return
            flight, _ = self._join_or_lead()
        thread = threading.Thread(
            target=self._fetch,
            args=(flight,),
            name="maskinporten-guard-keys",
            daemon=True,
        )
        thread.start()

    def _join_or_lead(self) -> tuple[_Flight, bool]:
        """The fetch in flight, or a new one led by the caller; hold the lock."""
        if self._flight is not None:
            return self._flight, False
        self._flight = _Flight()
        self._core.begin(self._core.clock())

        return self._flight, True

    def _fetch(self, flight: _Flight) -> bool:
        core = self._core
        started = time.monotonic()
        try:
            if self._jwks_uri is None:
                metadata_uri = self._settings.metadata_uri
                metadata = _fetch_sync(self._client, metadata_uri, self._settings)
                self._jwks_uri = _jwks_uri_from_metadata(metadata, self._settings)
            data = _fetch_sync(self._client, self._jwks_uri, self._settings)
            with self._lock:
                core.accept(data, core.clock())
            flight.ok = True
        except KeyFetchError as exc:
            with self._lock:
                core.fail(exc, core.clock())
        finally:
            with self._lock:
                core.end()
                self._flight = None
            flight.done.set()
            core.metrics.observe("key_fetch_seconds", time.monotonic() - started)

        return flight.ok


class _Flight:
    """One sync fetch that several threads may wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
