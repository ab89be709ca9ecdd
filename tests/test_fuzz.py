"""Property-based fuzzing: nothing wrong is accepted, nothing raises unexpectedly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskinporten_guard import ManualClock, Policy, Settings, SyncGuard
from maskinporten_guard.errors import InvalidRequest, MissingToken
from maskinporten_guard.extract import extract_bearer
from maskinporten_guard.orgno import is_valid_orgno
from maskinporten_guard.policy import Rule, require
from maskinporten_guard.testing import FakeMaskinporten, StaticKeys

READ = "demo:inspections.read"
NOW = 1_760_000_000.0
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_clock = ManualClock(NOW)
_fake = FakeMaskinporten(clock=_clock)
_guard = SyncGuard(
    Policy([Rule("/inspections/{id}", require(all_of=[READ]))]),
    Settings.custom(_fake.issuer, token_cache_size=0),
    keys=StaticKeys(_fake),
    clock=_clock,
)
_VALID = _fake.mint(READ)

header_text = st.text(
    alphabet=st.characters(codec="latin-1"), max_size=300
) | st.builds(lambda s: "Bearer " + s, st.text(max_size=300))


@FUZZ
@given(headers=st.lists(header_text, max_size=3), query=st.text(max_size=100))
def test_extraction_answers_or_refuses_cleanly(headers: list[str], query: str) -> None:
    """Any header list yields one whitespace-free token or a 400/401 refusal."""
    try:
        token = extract_bearer(headers, query, max_bytes=8192)
    except (MissingToken, InvalidRequest):
        return
    assert token
    assert not any(ch in token for ch in " \t,")
    assert len(headers) == 1


@FUZZ
@given(headers=st.lists(header_text, max_size=3), query=st.text(max_size=60))
def test_random_headers_are_never_allowed(headers: list[str], query: str) -> None:
    """Random Authorization values never pass and never raise."""
    decision = _guard.check("GET", "/inspections/1", headers, query)

    assert not decision.allowed
    assert decision.status in {400, 401}


@st.composite
def mutations(draw: st.DrawFn) -> str:
    token = _VALID
    kind = draw(st.sampled_from(["flip", "insert", "delete", "swap"]))
    at = draw(st.integers(0, len(token) - 1))
    char = draw(st.sampled_from("ABCabc012-_.=+/ \x00é"))
    if kind == "flip":
        return token[:at] + char + token[at + 1 :]
    if kind == "insert":
        return token[:at] + char + token[at:]
    if kind == "delete":
        return token[:at] + token[at + 1 :]
    other = draw(st.integers(0, len(token) - 1))
    chars = list(token)
    chars[at], chars[other] = chars[other], chars[at]
    return "".join(chars)


@FUZZ
@given(token=mutations())
def test_mutated_tokens_are_refused(token: str) -> None:
    """Any change to a valid token's text makes it fail (or it is unchanged)."""
    decision = _guard.check("GET", "/inspections/1", [f"Bearer {token}"])

    # Spaces after the scheme and white space around the header value are
    # separators, not part of the token (RFC 7235 section 2.1).
    if token.lstrip(" ").rstrip(" \t") == _VALID:
        assert decision.allowed
    else:
        assert not decision.allowed
        assert decision.status in {400, 401}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
claim_names = st.sampled_from(
    [
        "iss",
        "exp",
        "iat",
        "nbf",
        "scope",
        "token_type",
        "consumer",
        "supplier",
        "client_id",
        "jti",
        "aud",
        "pid",
        "authorization_details",
        "delegation_source",
    ]
)


@FUZZ
@given(changes=st.dictionaries(claim_names, json_values, min_size=1, max_size=4))
def test_signed_garbage_claims_never_crash(changes: dict[str, Any]) -> None:
    """Correctly signed tokens with random claim values are decided, never raise."""
    token = _fake.mint(READ, extra=changes)

    decision = _guard.check("GET", "/inspections/1", [f"Bearer {token}"])

    assert decision.status in {200, 400, 401, 403}
    if decision.allowed:
        identity = decision.identity
        assert identity is not None
        assert is_valid_orgno(identity.consumer_orgno)
        assert READ in identity.scopes
        assert identity.expires_at > NOW - 30
        assert identity.issuer == _fake.issuer


@pytest.mark.parametrize("size", [8192 + 1, 8192 + 17, 100_000])
def test_oversized_tokens_are_refused_cheaply(size: int) -> None:
    """Tokens beyond the size cap are refused before any parsing."""
    decision = _guard.check("GET", "/inspections/1", ["Bearer " + "A" * size])

    assert decision.status in {400, 401}
