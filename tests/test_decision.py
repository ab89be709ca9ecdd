from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest

from maskinporten_guard.audit import AuditLog
from maskinporten_guard.clock import ManualClock
from maskinporten_guard.decision import Decision, Guard, SyncGuard
from maskinporten_guard.errors import KeysUnavailable
from maskinporten_guard.ledger import GrantLedger
from maskinporten_guard.policy import OPTIONAL, PUBLIC, Policy, Rule, require
from maskinporten_guard.record import Recorder
from maskinporten_guard.settings import Settings
from maskinporten_guard.stores import MemoryStore
from maskinporten_guard.testing import (
    AsyncStaticKeys,
    FakeMaskinporten,
    StaticKeys,
)

NOW = 1_760_000_000.0

RULES = [
    Rule("/health", PUBLIC),
    Rule("/me", require()),
    Rule("/maybe", OPTIONAL),
    Rule("/inspections/{id}", require(all_of=["demo:inspections.read"]), {"GET"}),
    Rule(
        "/inspections",
        require(all_of=["demo:inspections.write"], consumers=["991825827"]),
        {"POST"},
    ),
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def fake(clock: ManualClock) -> FakeMaskinporten:
    return FakeMaskinporten(clock=clock)


@pytest.fixture
def ledger(clock: ManualClock) -> GrantLedger:
    return GrantLedger(MemoryStore(), clock=clock)


@pytest.fixture
def guard(fake: FakeMaskinporten, clock: ManualClock, ledger: GrantLedger) -> SyncGuard:
    settings = Settings.custom(fake.issuer)
    recorder = Recorder(audit=AuditLog(), ledger=ledger, clock=clock)
    return SyncGuard(
        Policy(RULES, allow_preflight=True),
        settings,
        keys=StaticKeys(fake),
        recorder=recorder,
        clock=clock,
    )


def bearer(token: str) -> list[str]:
    return [f"Bearer {token}"]


OUTCOMES = [
    pytest.param("GET", "/health", None, 200, "public", id="public-no-token"),
    pytest.param("GET", "/me", None, 401, "missing_token", id="missing-token"),
    pytest.param("GET", "/me", "valid", 200, "ok", id="any-valid-token"),
    pytest.param("GET", "/maybe", None, 200, "anonymous", id="optional-anonymous"),
    pytest.param("GET", "/maybe", "expired", 401, "expired", id="optional-bad-token"),
    pytest.param("GET", "/inspections/7", "valid", 200, "ok", id="read-allowed"),
    pytest.param(
        "GET",
        "/inspections/7",
        "write-only",
        403,
        "insufficient_scope",
        id="read-missing-scope",
    ),
    pytest.param("POST", "/inspections", "writer", 200, "ok", id="write-allowed"),
    pytest.param(
        "POST", "/inspections", "other-writer", 403, "consumer", id="write-consumer"
    ),
    pytest.param("GET", "/other", "valid", 403, "no_rule", id="unmatched-route"),
    pytest.param("DELETE", "/inspections/7", "valid", 403, "no_rule", id="method"),
    pytest.param("GET", "/me", "expired", 401, "expired", id="expired"),
    pytest.param("GET", "/me", "forged", 401, "signature", id="forged"),
    pytest.param("GET", "/me", "other-issuer", 401, "claim:iss", id="other-issuer"),
    pytest.param("GET", "/me", "garbage", 401, "malformed", id="garbage"),
]

TOKENS: dict[str, Any] = {
    "valid": lambda f: f.mint("demo:inspections.read"),
    "write-only": lambda f: f.mint("demo:inspections.write"),
    "writer": lambda f: f.mint("demo:inspections.write", "991825827"),
    "other-writer": lambda f: f.mint("demo:inspections.write", "889640782"),
    "expired": lambda f: f.mint("demo:x", issued_at=NOW - 600),
    "forged": lambda f: f.mint("demo:x", key=f.new_key(kid=f.current_key.kid)),
    "other-issuer": lambda f: f.mint("demo:x", extra={"iss": "https://idporten.no"}),
    "garbage": lambda f: "not-a-token",
}


@pytest.mark.parametrize(("method", "path", "token", "status", "reason"), OUTCOMES)
def test_decides(
    guard: SyncGuard,
    fake: FakeMaskinporten,
    method: str,
    path: str,
    token: str | None,
    status: int,
    reason: str,
) -> None:
    """Each kind of request gets its status and reason code."""
    headers = bearer(TOKENS[token](fake)) if token else []

    decision = guard.check(method, path, headers)

    assert (decision.status, decision.reason) == (status, reason)
    assert decision.allowed is (status == 200)


def test_async_guard_decides_the_same(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """The async guard runs the same core and answers the same decision."""
    guard = Guard(
        RULES, Settings.custom(fake.issuer), keys=AsyncStaticKeys(fake), clock=clock
    )

    async def run() -> Decision:
        return await guard.check("GET", "/inspections/1", bearer(fake.mint("demo:x")))

    decision = anyio.run(run)

    assert (decision.status, decision.reason) == (403, "insufficient_scope")


def test_allowed_decision_carries_identity_and_scopes(
    guard: SyncGuard, fake: FakeMaskinporten
) -> None:
    """An allowed request names the consumer and the scopes that authorised it."""
    token = fake.mint("demo:inspections.read demo:other", "889640782")

    decision = guard.check("GET", "/inspections/3", bearer(token))

    assert decision.identity is not None
    assert decision.identity.consumer_orgno == "889640782"
    assert decision.scopes == ("demo:inspections.read",)
    assert decision.route == "/inspections/{id}"


def test_preflight_passes_without_token(guard: SyncGuard) -> None:
    """A CORS preflight passes when the policy lets preflights through."""
    decision = guard.check("OPTIONS", "/me", [], preflight=True)

    assert decision.allowed
    assert decision.reason == "preflight"


@pytest.mark.parametrize(
    ("headers", "query", "status", "challenge"),
    [
        pytest.param([], b"", 401, 'Bearer realm="maskinporten"', id="no-token"),
        pytest.param(
            ["Bearer a", "Bearer b"],
            b"",
            400,
            'Bearer realm="maskinporten", error="invalid_request"',
            id="two-headers",
        ),
        pytest.param(
            [],
            b"access_token=abc",
            400,
            'Bearer realm="maskinporten", error="invalid_request"',
            id="query-token",
        ),
        pytest.param(
            ["Bearer abc"],
            b"",
            401,
            'Bearer realm="maskinporten", error="invalid_token"',
            id="bad-token",
        ),
    ],
)
def test_response_follows_rfc6750(
    guard: SyncGuard,
    headers: list[str],
    query: bytes,
    status: int,
    challenge: str,
) -> None:
    """Refusals carry the RFC 6750 status and challenge and a problem+json body."""
    decision = guard.check("GET", "/me", headers, query)
    response = guard.response(decision)
    fields = dict(response.headers)

    assert response.status == status
    assert fields["www-authenticate"].startswith(challenge)
    assert fields["content-type"] == "application/problem+json"
    body = json.loads(response.body)
    assert body["status"] == status
    if status == 401 and not headers:
        assert "error" not in body
        assert fields["www-authenticate"] == challenge


def test_insufficient_scope_response_names_scope(
    guard: SyncGuard, fake: FakeMaskinporten
) -> None:
    """A 403 challenge says which scope the route requires."""
    decision = guard.check("GET", "/inspections/1", bearer(fake.mint("demo:x")))
    fields = dict(guard.response(decision).headers)

    assert 'error="insufficient_scope"' in fields["www-authenticate"]
    assert 'scope="demo:inspections.read"' in fields["www-authenticate"]


def test_keys_unavailable_answers_503(fake: FakeMaskinporten) -> None:
    """When no keys can be had, the answer is 503 with Retry-After, not a 401."""

    class NoKeys(StaticKeys):
        def cached(self, kid: str) -> None:
            return None

        def get_key(self, kid: str) -> Any:
            raise KeysUnavailable(
                "the issuer's keys could not be fetched", retry_after=7
            )

    guard = SyncGuard(
        RULES, Settings.custom(fake.issuer), keys=NoKeys(fake), clock=fake.clock
    )

    decision = guard.check("GET", "/me", bearer(fake.mint("demo:x")))
    response = guard.response(decision)

    assert response.status == 503
    assert ("retry-after", "7") in response.headers
    assert "www-authenticate" not in dict(response.headers)


def test_descriptions_can_be_dropped(fake: FakeMaskinporten) -> None:
    """With descriptions off, refusals say only the status and the error code."""
    guard = SyncGuard(
        RULES,
        Settings.custom(fake.issuer),
        keys=StaticKeys(fake),
        clock=fake.clock,
        expose_descriptions=False,
    )

    response = guard.response(guard.check("GET", "/me", ["Bearer x.y.z"]))

    assert json.loads(response.body) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "error": "invalid_token",
    }
    assert "error_description" not in dict(response.headers)["www-authenticate"]


def test_ledger_counts_allowed_and_verified_refusals(
    guard: SyncGuard, fake: FakeMaskinporten, ledger: GrantLedger
) -> None:
    """Allowed requests count per scope; refusals count only for verified tokens."""
    guard.check("GET", "/inspections/1", bearer(fake.mint("demo:inspections.read")))
    guard.check("GET", "/inspections/2", bearer(fake.mint("demo:inspections.read")))
    guard.check("POST", "/inspections", bearer(fake.mint("demo:x", "889640782")))
    forged = fake.mint(
        "demo:x", "974761076", key=fake.new_key(kid=fake.current_key.kid)
    )
    guard.check("POST", "/inspections", bearer(forged))
    ledger.flush()

    usage = ledger.store.read_usage()
    refusals = ledger.store.read_refusals()

    assert [(u.key.scope, u.key.consumer, u.usage.requests) for u in usage] == [
        ("demo:inspections.read", "991825827", 2)
    ]
    assert [(r.key.reason, r.key.consumer) for r in refusals] == [
        ("insufficient_scope", "889640782")
    ]


def test_audit_log_has_no_token(
    guard: SyncGuard, fake: FakeMaskinporten, caplog: pytest.LogCaptureFixture
) -> None:
    """Audit lines name consumer, route and reason but never contain the token."""
    token = fake.mint("demo:inspections.read", "889640782")
    expired = fake.mint("demo:x", issued_at=NOW - 600)

    with caplog.at_level(logging.INFO, logger="maskinporten_guard"):
        guard.check("GET", "/inspections/9", bearer(token))
        guard.check("GET", "/me", bearer(expired))

    text = caplog.text
    assert "889640782" in text
    assert "/inspections/{id}" in text
    assert "/inspections/9" not in text
    assert "expired" in text
    assert token not in text
    assert expired not in text
    assert token.split(".")[2] not in text


def test_reused_token_is_decided_per_route(
    guard: SyncGuard, fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """A remembered decision for one route never answers another route."""
    token = bearer(fake.mint("demo:inspections.read", "889640782"))

    first = guard.check("GET", "/inspections/1", token)
    write = guard.check("POST", "/inspections", token)
    again = guard.check("GET", "/inspections/2", token)
    third = guard.check("GET", "/inspections/3", token)
    clock.advance(3600)
    expired = guard.check("GET", "/inspections/4", token)

    assert (first.status, write.status, again.status) == (200, 403, 200)
    assert third is again
    assert expired.reason == "expired"
