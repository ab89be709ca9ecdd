from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest

from maskinporten_guard.clock import ManualClock
from maskinporten_guard.errors import KeyFetchError, KeysUnavailable, UnknownKey
from maskinporten_guard.keys import (
    AsyncKeySource,
    KeySourceStatus,
    SyncKeySource,
    parse_jwks,
)
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import OMIT, FakeMaskinporten, IssuerServer

COOLDOWN = 60.0
REFRESH = 3600.0
STALENESS = 86400.0


def _document(*entries: object) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


class _Issuer:
    """The fake behind a socket-free transport, counting fetches, able to fail."""

    def __init__(self, fake: FakeMaskinporten) -> None:
        self.fake = fake
        self.inner = fake.transport()
        self.fetches = 0
        self.down = False
        self.metadata: dict[str, Any] | None = None
        self.headers: dict[str, str] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jwk"):
            self.fetches += 1
        if self.down:
            return httpx.Response(503)
        if self.metadata is not None and "well-known" in request.url.path:
            return httpx.Response(200, json=self.metadata)
        if self.headers:
            body = json.dumps(self.fake.jwks()).encode()
            return httpx.Response(200, content=body, headers=self.headers)

        return self.inner.handle_request(request)

    def async_source(self, clock: ManualClock, **options: Any) -> AsyncKeySource:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

        return AsyncKeySource(_settings(**options), client=client, clock=clock)

    def sync_source(self, clock: ManualClock, **options: Any) -> SyncKeySource:
        client = httpx.Client(transport=httpx.MockTransport(self.handle))

        return SyncKeySource(_settings(**options), client=client, clock=clock)


def _settings(**options: Any) -> Settings:
    options.setdefault("jwks_uri", "https://test.maskinporten.no/jwk")
    options.setdefault("unknown_kid_cooldown", COOLDOWN)

    return Settings.custom(
        options.pop("issuer", "https://test.maskinporten.no/"), **options
    )


async def _let_background_run() -> None:
    for _ in range(20):
        await anyio.sleep(0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def issuer(maskinporten: FakeMaskinporten) -> _Issuer:
    return _Issuer(maskinporten)


# parse_jwks


def test_parse_loads_the_published_key(maskinporten: FakeMaskinporten) -> None:
    """A Maskinporten-shaped JWKS yields its key with kid, alg and size."""
    key_set = parse_jwks(_document(maskinporten.current_key.jwk()), fetched_at=5.0)
    key = key_set.keys[maskinporten.current_key.kid]

    assert (key.alg, key.size, key_set.fetched_at, key_set.skipped) == (
        "RS256",
        2048,
        5.0,
        0,
    )


def test_parse_keeps_a_key_without_alg(maskinporten: FakeMaskinporten) -> None:
    """A key that states no alg is usable, with alg None."""
    entry = maskinporten.current_key.jwk(alg=OMIT)
    key_set = parse_jwks(_document(entry), fetched_at=0.0)

    assert key_set.keys[maskinporten.current_key.kid].alg is None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"kty": "EC"}, id="not-rsa"),
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"key_ops": ["encrypt"]}, id="key-ops-without-verify"),
        pytest.param({"key_ops": "verify"}, id="key-ops-not-a-list"),
        pytest.param({"alg": "HS256"}, id="alg-hs256"),
        pytest.param({"alg": "none"}, id="alg-none"),
        pytest.param({"alg": "PS256"}, id="alg-ps256"),
        pytest.param({"d": "AQAB"}, id="private-exponent"),
        pytest.param({"p": "AQAB", "q": "AQAB"}, id="private-primes"),
        pytest.param({"kid": OMIT}, id="missing-kid"),
        pytest.param({"kid": 7}, id="number-kid"),
        pytest.param({"kid": ""}, id="empty-kid"),
        pytest.param({"e": "AQAA"}, id="even-exponent"),
        pytest.param({"e": "AQ"}, id="exponent-one"),
        pytest.param({"e": "AQAAAAAB"}, id="exponent-over-32-bits"),
        pytest.param({"n": "!!!notbase64"}, id="n-not-base64url"),
        pytest.param({"n": 12345}, id="n-a-number"),
        pytest.param({"e": "AQAB="}, id="padded-exponent"),
        pytest.param({"n": OMIT}, id="missing-modulus"),
    ],
)
def test_parse_skips_unusable_key(
    maskinporten: FakeMaskinporten, change: dict[str, Any]
) -> None:
    """An unusable entry is skipped and the good key beside it still loads."""
    good = maskinporten.current_key
    bad = maskinporten.new_key()
    document = _document(bad.jwk(**change), good.jwk())
    key_set = parse_jwks(document, fetched_at=0.0)

    assert list(key_set.keys) == [good.kid]
    assert key_set.skipped == 1


def test_parse_skips_a_small_modulus(maskinporten: FakeMaskinporten) -> None:
    """A 1024-bit RSA key is skipped."""
    weak = maskinporten.new_key(size=1024)
    key_set = parse_jwks(
        _document(weak.jwk(), maskinporten.current_key.jwk()), fetched_at=0.0
    )

    assert weak.kid not in key_set.keys
    assert key_set.skipped == 1


def test_parse_skips_both_copies_of_a_duplicate_kid(
    maskinporten: FakeMaskinporten,
) -> None:
    """Two entries with one kid are ambiguous, so neither is used."""
    twin = maskinporten.current_key
    other = maskinporten.new_key()
    impostor = maskinporten.new_key(kid=twin.kid)
    key_set = parse_jwks(
        _document(twin.jwk(), impostor.jwk(), other.jwk()), fetched_at=0.0
    )

    assert list(key_set.keys) == [other.kid]
    assert key_set.skipped == 2


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"<html>", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"{}", id="no-keys"),
        pytest.param(b'{"keys": {}}', id="keys-not-a-list"),
        pytest.param(b'{"keys": [], "keys": []}', id="repeated-member"),
        pytest.param(b'{"keys": [NaN]}', id="nan"),
        pytest.param(b'{"keys": []}', id="empty-list"),
        pytest.param(b'{"keys": [{"kty": "EC", "kid": "a"}]}', id="no-usable-key"),
    ],
)
def test_parse_refuses_a_document_without_usable_keys(data: bytes) -> None:
    """A document that is not a JWKS, or holds no usable key, is a fetch error."""
    with pytest.raises(KeyFetchError):
        parse_jwks(data, fetched_at=0.0)


# the cache, through the async source on a socket-free transport


@pytest.mark.anyio
async def test_cold_start_fetches_once(issuer: _Issuer, clock: ManualClock) -> None:
    """The first lookup fetches the key set; later lookups are served from it."""
    source = issuer.async_source(clock)
    kid = issuer.fake.current_key.kid
    key = await source.get_key(kid)

    assert source.cached(kid) is key
    assert issuer.fetches == 1
    await source.aclose()


@pytest.mark.anyio
async def test_rotation_refetches_once(issuer: _Issuer, clock: ManualClock) -> None:
    """A new kid after the cooldown causes one refetch and is then found."""
    source = issuer.async_source(clock)
    await source.get_key(issuer.fake.current_key.kid)
    clock.advance(COOLDOWN + 1)
    new = issuer.fake.rotate()

    assert (await source.get_key(new.kid)).kid == new.kid
    assert issuer.fetches == 2
    await source.aclose()


@pytest.mark.anyio
async def test_unknown_kid_within_cooldown_is_refused_at_once(
    issuer: _Issuer, clock: ManualClock
) -> None:
    """Inside the cooldown an unknown kid is refused without a fetch."""
    source = issuer.async_source(clock)
    await source.get_key(issuer.fake.current_key.kid)
    new = issuer.fake.rotate()

    with pytest.raises(UnknownKey):
        await source.get_key(new.kid)
    assert issuer.fetches == 1
    await source.aclose()


@pytest.mark.anyio
async def test_refresh_runs_in_background(issuer: _Issuer, clock: ManualClock) -> None:
    """A due refresh is scheduled; the lookup answers before it runs."""
    source = issuer.async_source(clock)
    kid = issuer.fake.current_key.kid
    key = await source.get_key(kid)
    clock.advance(REFRESH * 0.95)

    assert source.cached(kid) is key
    assert issuer.fetches == 1
    await _let_background_run()
    assert issuer.fetches == 2
    await source.aclose()


@pytest.mark.anyio
async def test_outage_within_staleness_keeps_serving(
    issuer: _Issuer, clock: ManualClock
) -> None:
    """While the endpoint fails, the last good keys serve until max_staleness."""
    source = issuer.async_source(clock)
    kid = issuer.fake.current_key.kid
    await source.get_key(kid)
    issuer.down = True
    clock.advance(STALENESS - 1)
    await source.prefetch()

    assert (await source.get_key(kid)).kid == kid
    assert source.status().failures == 1
    await source.aclose()


@pytest.mark.anyio
async def test_outage_beyond_staleness_is_unavailable(
    issuer: _Issuer, clock: ManualClock
) -> None:
    """Past max_staleness with the endpoint down, lookups raise KeysUnavailable."""
    source = issuer.async_source(clock)
    kid = issuer.fake.current_key.kid
    await source.get_key(kid)
    issuer.down = True
    clock.advance(STALENESS + 1)

    assert source.cached(kid) is None
    with pytest.raises(KeysUnavailable):
        await source.get_key(kid)
    await source.aclose()


@pytest.mark.anyio
async def test_unusable_document_keeps_the_old_keys(
    issuer: _Issuer, clock: ManualClock
) -> None:
    """A fetched document with no usable key does not replace the key set."""
    source = issuer.async_source(clock)
    kid = issuer.fake.current_key.kid
    await source.get_key(kid)
    issuer.fake.keys = []

    assert await source.prefetch() is False
    assert source.status().kids == (kid,)
    await source.aclose()


@pytest.mark.anyio
async def test_failed_fetches_are_spaced(issuer: _Issuer, clock: ManualClock) -> None:
    """After a failed cold fetch, callers get 503 and no fetch until the cooldown."""
    source = issuer.async_source(clock)
    issuer.down = True
    kid = issuer.fake.current_key.kid
    for _ in range(3):
        with pytest.raises(KeysUnavailable):
            await source.get_key(kid)
    assert issuer.fetches == 1

    clock.advance(COOLDOWN + 1)
    issuer.down = False
    assert (await source.get_key(kid)).kid == kid
    assert issuer.fetches == 2
    await source.aclose()


@pytest.mark.anyio
async def test_status_reports_the_cache(issuer: _Issuer, clock: ManualClock) -> None:
    """status() names the kids, the age and the fetch counts."""
    source = issuer.async_source(clock)
    await source.prefetch()
    clock.advance(10)

    assert source.status() == KeySourceStatus(
        (issuer.fake.current_key.kid,), 10.0, 1, 0, None
    )
    await source.aclose()


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        pytest.param(
            {"issuer": "https://evil.example/", "jwks_uri": "https://evil.example/jwk"},
            "names issuer",
            id="issuer-mismatch",
        ),
        pytest.param(
            {"issuer": "https://test.maskinporten.no/", "jwks_uri": "http://x.no/jwk"},
            "https",
            id="http-to-non-loopback",
        ),
        pytest.param(
            {"issuer": "https://test.maskinporten.no/"}, "no jwks_uri", id="no-jwks-uri"
        ),
    ],
)
def test_discovery_refuses_bad_metadata(
    issuer: _Issuer, clock: ManualClock, metadata: dict[str, Any], fragment: str
) -> None:
    """Metadata with the wrong issuer or an unsafe jwks_uri fails the fetch."""
    issuer.metadata = metadata
    source = issuer.sync_source(clock, jwks_uri=None)

    assert source.prefetch() is False
    assert fragment in (source.status().last_error or "")
    assert issuer.fetches == 0


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        pytest.param({"Content-Type": "application/json"}, True, id="json"),
        pytest.param(
            {"Content-Type": "application/jwk-set+json; charset=utf-8"},
            True,
            id="jwk-set-with-charset",
        ),
        pytest.param({"Content-Type": "text/html"}, False, id="html"),
        pytest.param(
            {"Content-Type": "application/json", "Content-Length": "999999999"},
            False,
            id="length-over-cap",
        ),
    ],
)
def test_response_headers_are_checked(
    issuer: _Issuer, clock: ManualClock, headers: dict[str, str], ok: bool
) -> None:
    """Only a JSON content type within the byte cap is read."""
    issuer.headers = headers
    source = issuer.sync_source(clock)

    assert source.prefetch() is ok


# against the real IssuerServer


def _server_settings(server: IssuerServer, **options: Any) -> Settings:
    options.setdefault("unknown_kid_cooldown", COOLDOWN)

    return Settings.custom(server.url, jwks_uri=server.jwks_uri, **options)


def test_discovery_through_metadata(maskinporten_server: IssuerServer) -> None:
    """Without jwks_uri the source reads the metadata once, then the key set."""
    source = SyncKeySource(Settings.custom(maskinporten_server.url))
    kid = maskinporten_server.fake.current_key.kid

    assert source.get_key(kid).kid == kid
    assert source.prefetch() is True
    assert maskinporten_server.metadata_fetches == 1
    assert maskinporten_server.jwks_fetches == 2
    source.close()


@pytest.mark.anyio
async def test_concurrent_cold_start_async_fetches_once(
    maskinporten_server: IssuerServer, clock: ManualClock
) -> None:
    """Fifty concurrent async callers on a cold source share one fetch."""
    maskinporten_server.fault = "slow"
    maskinporten_server.delay = 0.1
    source = AsyncKeySource(_server_settings(maskinporten_server), clock=clock)
    kid = maskinporten_server.fake.current_key.kid
    found: list[str] = []

    async def look_up() -> None:
        found.append((await source.get_key(kid)).kid)

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(look_up)

    assert found == [kid] * 50
    assert maskinporten_server.jwks_fetches == 1
    await source.aclose()


def test_concurrent_cold_start_threads_fetch_once(
    maskinporten_server: IssuerServer, clock: ManualClock
) -> None:
    """Twenty threads on a cold sync source share one fetch."""
    maskinporten_server.fault = "slow"
    maskinporten_server.delay = 0.1
    source = SyncKeySource(_server_settings(maskinporten_server), clock=clock)
    kid = maskinporten_server.fake.current_key.kid
    barrier = threading.Barrier(20)
    found: list[str] = []

    def look_up() -> None:
        barrier.wait()
        found.append(source.get_key(kid).kid)

    threads = [threading.Thread(target=look_up) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert found == [kid] * 20
    assert maskinporten_server.jwks_fetches == 1
    source.close()


def test_unknown_kid_flood_sync(
    maskinporten_server: IssuerServer, clock: ManualClock
) -> None:
    """A thousand random kids cost no fetch inside the cooldown and one after."""
    source = SyncKeySource(_server_settings(maskinporten_server), clock=clock)
    source.prefetch()
    kids = [str(uuid.uuid4()) for _ in range(1000)]
    for kid in kids:
        with pytest.raises(UnknownKey):
            source.get_key(kid)
    assert maskinporten_server.jwks_fetches == 1

    clock.advance(COOLDOWN + 1)
    for kid in kids:
        with pytest.raises(UnknownKey):
            source.get_key(kid)
    assert maskinporten_server.jwks_fetches == 2
    source.close()


@pytest.mark.anyio
async def test_unknown_kid_flood_async(
    maskinporten_server: IssuerServer, clock: ManualClock
) -> None:
    """A thousand concurrent random kids after the cooldown cost exactly one fetch."""
    source = AsyncKeySource(_server_settings(maskinporten_server), clock=clock)
    await source.prefetch()
    clock.advance(COOLDOWN + 1)
    refused: list[str] = []

    async def look_up(kid: str) -> None:
        try:
            await source.get_key(kid)
        except UnknownKey:
            refused.append(kid)

    async with anyio.create_task_group() as group:
        for _ in range(1000):
            group.start_soon(look_up, str(uuid.uuid4()))

    assert len(refused) == 1000
    assert maskinporten_server.jwks_fetches == 2
    await source.aclose()


@pytest.mark.parametrize(
    ("fault", "fragment"),
    [
        pytest.param("redirect", "redirect", id="redirect"),
        pytest.param("huge", "max_jwks_bytes", id="huge"),
        pytest.param("gzip", "Content-Encoding", id="gzip"),
        pytest.param("garbage", "not valid JSON", id="garbage"),
        pytest.param("empty", "no usable", id="empty"),
        pytest.param("down", "HTTP 503", id="down"),
        pytest.param("refuse", "failed", id="refuse"),
    ],
)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_hardened_fetch_refuses(
    maskinporten_server: IssuerServer, kind: str, fault: str, fragment: str
) -> None:
    """Each issuer fault makes the fetch fail with a message saying why."""
    maskinporten_server.fault = fault  # type: ignore[assignment]
    status = _prefetch(kind, _server_settings(maskinporten_server))

    assert fragment in (status.last_error or "")
    assert status.kids == ()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_drip_is_cut_by_the_total_deadline(
    maskinporten_server: IssuerServer, kind: str
) -> None:
    """A body dripped a byte at a time fails at fetch_timeout, not read_timeout."""
    maskinporten_server.fault = "drip"
    maskinporten_server.delay = 0.05
    settings = _server_settings(
        maskinporten_server, fetch_timeout=0.5, read_timeout=0.3
    )
    started = time.monotonic()
    status = _prefetch(kind, settings)

    assert "fetch_timeout" in (status.last_error or "")
    assert time.monotonic() - started < 1.5


def _prefetch(kind: str, settings: Settings) -> KeySourceStatus:
    if kind == "sync":
        sync_source = SyncKeySource(settings)
        sync_source.prefetch()
        sync_source.close()
        return sync_source.status()

    async def run() -> KeySourceStatus:
        source = AsyncKeySource(settings)
        await source.prefetch()
        await source.aclose()
        return source.status()

    return anyio.run(run)


class _Recorder:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], float] = {}
        self.gauges: dict[str, float] = {}

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = (name, labels.get("outcome", ""))
        self.counts[key] = self.counts.get(key, 0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        self.gauges[name] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Not recorded."""


def test_metrics_count_fetch_outcomes(issuer: _Issuer, clock: ManualClock) -> None:
    """Each fetch is counted by outcome, and the key set size is reported."""
    metrics = _Recorder()
    client = httpx.Client(transport=httpx.MockTransport(issuer.handle))
    source = SyncKeySource(_settings(), client=client, clock=clock, metrics=metrics)
    source.prefetch()
    issuer.down = True
    source.prefetch()

    assert metrics.counts[("key_fetches", "ok")] == 1
    assert metrics.counts[("key_fetches", "error")] == 1
    assert metrics.gauges["key_set_size"] == 1


def test_sync_refresh_runs_in_a_thread(issuer: _Issuer, clock: ManualClock) -> None:
    """A due refresh on the sync source runs in a daemon thread; the caller goes on."""
    source = issuer.sync_source(clock)
    kid = issuer.fake.current_key.kid
    source.get_key(kid)
    clock.advance(REFRESH * 0.95)
    key = source.cached(kid)

    assert key is not None
    assert key.kid == kid
    for thread in threading.enumerate():
        if thread.name == "maskinporten-guard-keys":
            thread.join(timeout=5)
    assert issuer.fetches == 2
