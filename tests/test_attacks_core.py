"""The attack table through the decision core, with keys over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from maskinporten_guard import ManualClock, Policy, Settings, SyncGuard
from maskinporten_guard.testing import FakeMaskinporten, IssuerServer

from .attacks import ATTACK_RULES, ATTACKS, Attack

NOW = 1_760_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[IssuerServer]:
    with IssuerServer(FakeMaskinporten(clock=clock)) as server:
        yield server


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack(attack: Attack, server: IssuerServer, clock: ManualClock) -> None:
    """Each attack gets exactly its expected status and RFC 6750 error code."""
    fake = server.fake
    if attack.prepare is not None:
        attack.prepare(fake, server)
    request = attack.build(fake)
    settings = Settings.custom(
        server.url, fetch_timeout=1.0, read_timeout=0.5, connect_timeout=0.5
    )
    guard = SyncGuard(Policy(ATTACK_RULES), settings, clock=clock)
    try:
        decision = guard.check(
            request.method, request.path, list(request.authorization), request.query
        )
    finally:
        guard.shutdown()

    assert decision.status == attack.status, decision.reason
    if decision.allowed:
        return
    headers = dict(guard.response(decision).headers)
    challenge = headers.get("www-authenticate")
    if attack.status == 503:
        assert challenge is None
        assert "retry-after" in headers
    elif attack.error is None:
        assert challenge == 'Bearer realm="maskinporten"'
    else:
        assert challenge is not None
        assert f'error="{attack.error}"' in challenge
    for credential in request.authorization:
        token = credential.partition(" ")[2].strip()
        if len(token) > 20:
            assert token not in str(headers)
            assert token not in guard.response(decision).body.decode()


def test_table_is_large_enough() -> None:
    """The table covers at least 80 cases, as the attack suite promises."""
    assert len(ATTACKS) >= 80
