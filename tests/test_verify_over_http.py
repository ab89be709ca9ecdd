"""The verifier end to end, with its default key source on a real HTTP issuer."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from maskinporten_guard import KeysUnavailable, ManualClock, Settings
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer
from maskinporten_guard.verifier import SyncVerifier, Verifier

NOW = 1_760_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[IssuerServer]:
    with IssuerServer(FakeMaskinporten(clock=clock)) as server:
        yield server


def settings_for(server: IssuerServer) -> Settings:
    return Settings.custom(
        server.url,
        refresh_interval=300,
        max_staleness=3600,
        unknown_kid_cooldown=30,
        fetch_timeout=2,
    )


def test_sync_verifier_discovers_keys_and_survives_rotation(
    server: IssuerServer, clock: ManualClock
) -> None:
    """Metadata discovery, then a rotation costs exactly one more JWKS fetch."""
    verifier = SyncVerifier(settings_for(server), clock=clock)
    fake = server.fake
    try:
        assert verifier.verify(fake.mint("demo:x")).consumer_orgno == "991825827"
        fake.rotate()
        clock.advance(31)
        assert verifier.verify(fake.mint("demo:y")).kid == fake.current_key.kid
    finally:
        verifier.close()

    assert server.metadata_fetches == 1
    assert server.jwks_fetches == 2


def test_async_verifier_serves_stale_keys_then_503(
    server: IssuerServer, clock: ManualClock
) -> None:
    """While the issuer is down, cached keys serve until max staleness, then 503."""
    fake = server.fake

    async def run() -> None:
        verifier = Verifier(settings_for(server), clock=clock)
        try:
            await verifier.verify(fake.mint("demo:x"))
            server.fault = "down"
            clock.advance(1800)
            identity = await verifier.verify(fake.mint("demo:x"))
            assert identity.scopes == frozenset({"demo:x"})

            clock.advance(1801)
            with pytest.raises(KeysUnavailable):
                await verifier.verify(fake.mint("demo:x"))

            server.fault = None
            clock.advance(31)
            await verifier.verify(fake.mint("demo:x"))
        finally:
            await verifier.aclose()

    anyio.run(run)
