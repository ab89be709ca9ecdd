from __future__ import annotations

import dataclasses
import json
import tracemalloc
from typing import Any

import anyio
import pytest

from maskinporten_guard import (
    ConsumerNotAllowed,
    Identity,
    InvalidClaim,
    InvalidSignature,
    MalformedToken,
    ManualClock,
    Settings,
    TokenExpired,
    UnknownKey,
    UnsupportedAlgorithm,
)
from maskinporten_guard.claims import IdentityReader, read_identity
from maskinporten_guard.errors import AuthError
from maskinporten_guard.testing import (
    OMIT,
    AsyncStaticKeys,
    FakeMaskinporten,
    StaticKeys,
    b64url,
    org,
)
from maskinporten_guard.verifier import SyncVerifier, Verifier

NOW = 1_760_000_000.0
WRITER = "991825827"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def fake(clock: ManualClock) -> FakeMaskinporten:
    return FakeMaskinporten(clock=clock)


def make_verifier(
    fake: FakeMaskinporten, clock: ManualClock, **options: Any
) -> SyncVerifier:
    settings = Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri, **options)
    return SyncVerifier(settings, StaticKeys(fake), clock=clock)


def test_accepts_a_production_shaped_token(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """A token shaped like Maskinporten's verifies into the identity it carries."""
    token = fake.mint("altinn:broker.read demo:x", "314240979", client_id="abc")

    identity = make_verifier(fake, clock).verify(token)

    assert identity.consumer_orgno == "314240979"
    assert identity.scopes == frozenset({"altinn:broker.read", "demo:x"})
    assert identity.client_id == "abc"
    assert identity.client_amr == "private_key_jwt"
    assert identity.supplier is None
    assert identity.expires_at == NOW + 120
    assert identity.kid == fake.current_key.kid


def test_delegated_token_names_supplier_and_source(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """A delegated token exposes the supplier and where the delegation was made."""
    token = fake.mint(
        "difitest:test2",
        "910753614",
        supplier="991825827",
        delegation_source="https://tt02.altinn.no/",
        audience="unspecified",
        extra={"client_orgno": "991825827"},
    )

    identity = make_verifier(fake, clock).verify(token)

    assert identity.consumer_orgno == "910753614"
    assert identity.supplier_orgno == "991825827"
    assert identity.delegation_source == "https://tt02.altinn.no/"
    assert identity.audience == ()


def test_system_user_token_is_typed(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """`authorization_details` for an Altinn system user becomes a SystemUser."""
    token = fake.mint("skatteetaten:x", "974761076", system_user="313367002")

    identity = make_verifier(fake, clock).verify(token)

    assert identity.system_user is not None
    assert identity.system_user.org.orgno == "313367002"
    assert identity.system_user.system_id == "991825827_demo_system"
    assert len(identity.system_user.ids) == 1


def test_consent_details_are_typed(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """A consent entry, given as a single object, becomes a Consent."""
    details = {
        "type": "urn:altinn:consent",
        "id": "c-1",
        "from": {"type": "urn:altinn:person:identifier-no", "value": "01017012345"},
        "to": org("991825827"),
        "consented": "2025-01-01T00:00:00Z",
        "validTo": "2026-01-01T00:00:00Z",
        "consentRights": [{"action": ["read"], "resource": []}],
    }
    token = fake.mint("demo:x", extra={"authorization_details": details})

    identity = make_verifier(fake, clock).verify(token)

    assert len(identity.consents) == 1
    assert identity.consents[0].to is not None
    assert identity.consents[0].to.orgno == "991825827"
    assert identity.consents[0].valid_to == "2026-01-01T00:00:00Z"


CLAIM_CASES = [
    pytest.param({"iss": "https://test.maskinporten.no"}, "iss", id="iss-no-slash"),
    pytest.param({"iss": "https://idporten.no"}, "iss", id="iss-idporten"),
    pytest.param({"iss": "https://maskinporten.no/"}, "iss", id="iss-other-env"),
    pytest.param({"iss": OMIT}, "iss", id="iss-missing"),
    pytest.param({"iss": ["https://test.maskinporten.no/"]}, "iss", id="iss-list"),
    pytest.param({"exp": OMIT}, "exp", id="exp-missing"),
    pytest.param({"exp": str(int(NOW) + 60)}, "exp", id="exp-numeric-string"),
    pytest.param({"exp": True}, "exp", id="exp-boolean"),
    pytest.param({"exp": None}, "exp", id="exp-null"),
    pytest.param({"exp": 1e300 * 10}, "exp", id="exp-huge"),
    pytest.param({"exp": -5}, "exp", id="exp-negative"),
    pytest.param({"iat": OMIT}, "iat", id="iat-missing"),
    pytest.param({"iat": "1760000000"}, "iat", id="iat-string"),
    pytest.param({"iat": NOW + 31}, "iat", id="iat-future-beyond-leeway"),
    pytest.param({"iat": NOW + 200, "exp": NOW + 300}, "iat", id="iat-far-future"),
    pytest.param({"exp": NOW - 10, "iat": NOW - 5}, "exp", id="exp-before-iat"),
    pytest.param({"nbf": NOW + 60}, "nbf", id="nbf-future"),
    pytest.param({"nbf": "0"}, "nbf", id="nbf-string"),
    pytest.param({"token_type": OMIT}, "token_type", id="token-type-missing"),
    pytest.param({"token_type": "bearer"}, "token_type", id="token-type-lowercase"),
    pytest.param({"token_type": "DPoP"}, "token_type", id="token-type-dpop"),
    pytest.param({"scope": OMIT}, "scope", id="scope-missing"),
    pytest.param({"scope": ["demo:x"]}, "scope", id="scope-list"),
    pytest.param({"scope": ""}, "scope", id="scope-empty"),
    pytest.param({"scope": "demo:x  demo:y"}, "scope", id="scope-double-space"),
    pytest.param({"scope": "demo:x\tdemo:y"}, "scope", id="scope-tab"),
    pytest.param({"scope": "demo:x\ndemo:y"}, "scope", id="scope-newline"),
    pytest.param({"scope": 'demo:"x"'}, "scope", id="scope-quote"),
    pytest.param({"consumer": OMIT}, "consumer", id="consumer-missing"),
    pytest.param({"consumer": "0192:991825827"}, "consumer", id="consumer-string"),
    pytest.param(
        {"consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:123456789"}},
        "consumer",
        id="consumer-bad-check-digit",
    ),
    pytest.param(
        {"consumer": {"authority": "iso6523-actorid-upis", "ID": "0208:991825827"}},
        "consumer",
        id="consumer-other-icd",
    ),
    pytest.param(
        {"consumer": {"authority": "other", "ID": "0192:991825827"}},
        "consumer",
        id="consumer-other-authority",
    ),
    pytest.param(
        {"consumer": {"authority": "iso6523-actorid-upis", "ID": "991825827"}},
        "consumer",
        id="consumer-no-icd",
    ),
    pytest.param(
        {
            "consumer": {
                "authority": "iso6523-actorid-upis",
                "ID": "0192:991825827:ER//987464291:1",
            }
        },
        "consumer",
        id="consumer-subunit-not-configured",
    ),
    pytest.param(
        {"consumer": {"authority": "etsi-en-319-412", "ID": "NTRNO-991825827"}},
        "consumer",
        id="consumer-eseal-not-configured",
    ),
    pytest.param(
        {"consumer": {"authority": "iso6523-actorid-upis", "ID": "0192:x:991825827"}},
        "consumer",
        id="consumer-last-colon-trick",
    ),
    pytest.param(
        {"consumer": {"authority": "iso6523-actorid-upis", "ID": 991825827}},
        "consumer",
        id="consumer-id-number",
    ),
    pytest.param({"supplier": {"ID": "0192:991825827"}}, "supplier", id="supplier-bad"),
    pytest.param({"iat": 10**400}, "iat", id="iat-beyond-floats"),
    pytest.param({"exp": 10**400}, "exp", id="exp-beyond-floats"),
    pytest.param({"client_id": OMIT}, "client_id", id="client-id-missing"),
    pytest.param({"client_id": 7}, "client_id", id="client-id-number"),
    pytest.param({"jti": OMIT}, "jti", id="jti-missing"),
    pytest.param({"aud": 5}, "aud", id="aud-number"),
    pytest.param({"pid": "1234"}, "pid", id="pid-short"),
    pytest.param({"pid": 12345678901}, "pid", id="pid-number"),
    pytest.param(
        {"authorization_details": "urn:altinn:systemuser"},
        "authorization_details",
        id="details-string",
    ),
    pytest.param(
        {"authorization_details": [{"type": "urn:altinn:systemuser"}]},
        "systemuser_org",
        id="details-systemuser-empty",
    ),
]


@pytest.mark.parametrize(("claims", "claim"), CLAIM_CASES)
def test_refuses_bad_claims(
    fake: FakeMaskinporten, clock: ManualClock, claims: dict[str, Any], claim: str
) -> None:
    """Each claim rule refuses its bad value and names the claim at fault."""
    token = fake.mint("demo:x", extra=claims)

    with pytest.raises((InvalidClaim, TokenExpired)) as caught:
        make_verifier(fake, clock).verify(token)

    if isinstance(caught.value, InvalidClaim):
        assert caught.value.claim == claim
    else:
        assert claim == "exp"
    assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        pytest.param(119, True, id="fresh"),
        pytest.param(120 + 29, True, id="expired-within-leeway"),
        pytest.param(120 + 30, False, id="expired-at-leeway"),
        pytest.param(120 + 3600, False, id="long-expired"),
    ],
)
def test_expiry_honours_leeway(
    fake: FakeMaskinporten, clock: ManualClock, age: float, accepted: bool
) -> None:
    """`exp` is enforced with the configured leeway (30 s by default)."""
    token = fake.mint("demo:x")
    verifier = make_verifier(fake, clock, token_cache_size=0)
    clock.advance(age)

    if accepted:
        verifier.verify(token)
    else:
        with pytest.raises(TokenExpired):
            verifier.verify(token)


def test_iat_within_leeway_is_accepted(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """A token issued slightly ahead of our clock (skew) is accepted."""
    token = fake.mint("demo:x", issued_at=NOW + 20)

    make_verifier(fake, clock).verify(token)


@pytest.mark.parametrize(
    ("options", "claims", "accepted"),
    [
        pytest.param({}, {"aud": "unspecified"}, True, id="no-audience-configured"),
        pytest.param({"audience": ("https://api.example/",)}, {}, False, id="missing"),
        pytest.param(
            {"audience": ("https://api.example/",)},
            {"aud": "unspecified"},
            False,
            id="legacy-unspecified",
        ),
        pytest.param(
            {"audience": ("https://api.example/",)},
            {"aud": "https://api.example/"},
            True,
            id="string-match",
        ),
        pytest.param(
            {"audience": ("https://api.example/",)},
            {"aud": ["https://other/", "https://api.example/"]},
            True,
            id="list-match",
        ),
        pytest.param(
            {"audience": ("https://api.example/",)},
            {"aud": "https://api.example"},
            False,
            id="no-trailing-slash",
        ),
        pytest.param(
            {"audience": ("https://api.example/",)},
            {"aud": "https://api.example/x"},
            False,
            id="prefix-only",
        ),
        pytest.param(
            {"audience": ("https://api.example/",)},
            {"aud": ["https://api.example/", 5]},
            False,
            id="list-with-number",
        ),
    ],
)
def test_audience_rules(
    fake: FakeMaskinporten,
    clock: ManualClock,
    options: dict[str, Any],
    claims: dict[str, Any],
    accepted: bool,
) -> None:
    """`aud` is checked only when configured, then exactly."""
    token = fake.mint("demo:x", extra=claims)
    verifier = make_verifier(fake, clock, **options)

    if accepted:
        verifier.verify(token)
    else:
        with pytest.raises(InvalidClaim, match="aud"):
            verifier.verify(token)


def test_pid_required(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """An API that requires pid refuses tokens without it and accepts those with."""
    verifier = make_verifier(fake, clock, require_pid=True)

    with pytest.raises(InvalidClaim, match="pid"):
        verifier.verify(fake.mint("demo:x"))
    identity = verifier.verify(fake.mint("demo:x", pid="01017012345"))

    assert identity.pid == "01017012345"


@pytest.mark.parametrize(
    ("consumer", "options", "orgno"),
    [
        pytest.param(
            {
                "authority": "iso6523-actorid-upis",
                "ID": "0192:991825827:ER//987464291:1",
            },
            {"accept_subunits": True},
            "991825827",
            id="subunit",
        ),
        pytest.param(
            {"authority": "etsi-en-319-412", "ID": "NTRNO-889640782"},
            {"accept_eseal": True},
            "889640782",
            id="eseal",
        ),
    ],
)
def test_other_consumer_shapes_when_configured(
    fake: FakeMaskinporten,
    clock: ManualClock,
    consumer: dict[str, str],
    options: dict[str, Any],
    orgno: str,
) -> None:
    """Sub-unit and eSeal ids are accepted only when configured, as their orgno."""
    token = fake.mint("demo:x", extra={"consumer": consumer})

    identity = make_verifier(fake, clock, **options).verify(token)

    assert identity.consumer_orgno == orgno
    assert identity.consumer.id == consumer["ID"]


def test_global_consumer_allow_list(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """`allowed_consumers` refuses any other consumer, whatever its supplier."""
    verifier = make_verifier(fake, clock, allowed_consumers={"991825827"})

    verifier.verify(fake.mint("demo:x", "991825827"))
    with pytest.raises(ConsumerNotAllowed):
        verifier.verify(fake.mint("demo:x", "889640782", supplier="991825827"))


def _tamper_payload(token: str, **changes: Any) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(
        __import__("base64").urlsafe_b64decode(body + "=" * (-len(body) % 4))
    )
    claims.update(changes)
    return ".".join([head, b64url(json.dumps(claims)), sig])


SIGNATURE_CASES = [
    pytest.param(
        lambda f: _tamper_payload(f.mint("demo:x"), scope="demo:admin"),
        InvalidSignature,
        id="payload-changed",
    ),
    pytest.param(
        lambda f: f.mint("demo:x", key=f.new_key(kid=f.current_key.kid)),
        InvalidSignature,
        id="forged-with-same-kid",
    ),
    pytest.param(
        lambda f: f.mint("demo:x", key=f.new_key()), UnknownKey, id="unpublished-key"
    ),
    pytest.param(
        lambda f: f.mint("demo:x").rsplit(".", 1)[0] + ".AAAA",
        InvalidSignature,
        id="short-signature",
    ),
    pytest.param(
        lambda f: f.mint("demo:x", alg="RS384"),
        UnsupportedAlgorithm,
        id="alg-differs-from-key",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), alg="none"),
        UnsupportedAlgorithm,
        id="alg-none",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), alg="HS256"),
        UnsupportedAlgorithm,
        id="alg-hs256",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), alg="ES256"),
        UnsupportedAlgorithm,
        id="alg-es256",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), header={"alg": OMIT}),
        UnsupportedAlgorithm,
        id="alg-missing",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), header={"kid": OMIT}),
        MalformedToken,
        id="kid-missing",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), header={"kid": 5}),
        MalformedToken,
        id="kid-number",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), header={"jku": "https://evil/"}),
        MalformedToken,
        id="jku",
    ),
    pytest.param(
        lambda f: f.sign(f.claims("demo:x"), header={"crit": ["exp"]}),
        MalformedToken,
        id="crit",
    ),
]


@pytest.mark.parametrize(("make", "error"), SIGNATURE_CASES)
def test_refuses_bad_signatures(
    fake: FakeMaskinporten,
    clock: ManualClock,
    make: Any,
    error: type[AuthError],
) -> None:
    """Forged, altered and wrongly signed tokens are refused with a 401 error."""
    token = make(fake)

    with pytest.raises(error) as caught:
        make_verifier(fake, clock).verify(token)

    assert caught.value.status == 401
    assert token not in str(caught.value)


def test_alg_checked_before_key_lookup(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """An HMAC token never reaches the key source, so it costs the issuer nothing."""
    keys = StaticKeys(fake)
    verifier = SyncVerifier(Settings.custom(fake.issuer), keys, clock=clock)
    token = fake.sign(fake.claims("demo:x"), alg="HS256", header={"kid": "nope"})

    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(token)

    assert keys.lookups == 0


def test_rotated_key_verifies(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """Tokens from the old and the new key both verify during a rotation."""
    verifier = make_verifier(fake, clock)
    old = fake.mint("demo:x")
    fake.rotate()
    new = fake.mint("demo:x")

    assert verifier.verify(old).kid != verifier.verify(new).kid


def test_cache_serves_reused_token(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """A reused token is answered from the cache, not verified again."""
    verifier = make_verifier(fake, clock)
    token = fake.mint("demo:x")

    first = verifier.verify(token)
    second = verifier.verify(token)

    assert first is second
    assert verifier.stats().cache_hits == 1


def test_cache_rechecks_expiry(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """A cached token stops working when it expires."""
    verifier = make_verifier(fake, clock)
    token = fake.mint("demo:x")
    verifier.verify(token)
    clock.advance(120 + 30)

    with pytest.raises(TokenExpired):
        verifier.verify(token)


def test_cache_drops_tokens_of_withdrawn_key(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """A cached token stops working when its key leaves the key set."""
    verifier = make_verifier(fake, clock)
    token = fake.mint("demo:x")
    verifier.verify(token)
    fake.rotate(keep_old=False)

    with pytest.raises(UnknownKey):
        verifier.verify(token)


def test_cache_does_not_mix_tokens(fake: FakeMaskinporten, clock: ManualClock) -> None:
    """A tampered copy of a cached token is verified on its own, and refused."""
    verifier = make_verifier(fake, clock)
    token = fake.mint("demo:x")
    verifier.verify(token)

    with pytest.raises(InvalidSignature):
        verifier.verify(_tamper_payload(token, consumer=org("889640782")))


def test_async_verifier_matches_sync(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """The async verifier answers the same identity through the same core."""

    settings = Settings.custom(fake.issuer)
    verifier = Verifier(settings, AsyncStaticKeys(fake), clock=clock)
    token = fake.mint("demo:x", "889640782")

    identity = anyio.run(verifier.verify, token)

    assert identity.consumer_orgno == "889640782"


def test_verified_identity_has_every_field(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """The verifier's fast construction sets exactly the dataclass's fields."""
    identity = make_verifier(fake, clock).verify(fake.mint("demo:x", supplier=WRITER))
    names = {f.name for f in dataclasses.fields(Identity)}

    assert set(vars(identity)) == names
    assert Identity(**{n: getattr(identity, n) for n in names}) == identity
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.jti = "changed"  # type: ignore[misc]


READER_PAYLOADS = [
    pytest.param({}, id="plain"),
    pytest.param({"supplier": WRITER}, id="delegated"),
    pytest.param({"system_user": "313367002"}, id="system-user"),
    pytest.param({"audience": ["https://api.example.no", "unspecified"]}, id="aud"),
    pytest.param({"pid": "01017012345"}, id="pid"),
    pytest.param({"extra": {"nbf": NOW - 5}}, id="nbf"),
    pytest.param({"extra": {"big": 10**30}}, id="int-beyond-64-bits"),
]


@pytest.mark.parametrize("options", READER_PAYLOADS)
def test_reader_answers_as_read_identity(
    fake: FakeMaskinporten, clock: ManualClock, options: dict[str, Any]
) -> None:
    """Remembered or not, the reader builds the identity read_identity builds."""
    settings = Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri)
    reader = IdentityReader(settings)
    first = fake.claims("demo:x", **options)
    clock.advance(30)
    second = fake.claims("demo:x", **options)

    for claims in (first, second, first):
        identity = reader.read(claims, clock(), "k1")
        expected = read_identity(claims, settings, clock(), kid="k1")
        assert identity == expected
        assert vars(identity) == vars(expected)
    assert reader.read(second, clock(), "k1").jti == second["jti"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"exp": NOW - 60, "iat": NOW - 180}, TokenExpired, id="expired"),
        pytest.param({"iat": NOW + 600, "exp": NOW + 700}, InvalidClaim, id="iat"),
        pytest.param({"nbf": NOW + 600}, InvalidClaim, id="nbf"),
        pytest.param({"jti": 7}, InvalidClaim, id="jti"),
        pytest.param({"exp": "1760000120"}, InvalidClaim, id="exp-text"),
    ],
)
def test_reader_checks_varying_claims_of_a_known_client(
    fake: FakeMaskinporten, clock: ManualClock, change: dict[str, Any], error: type
) -> None:
    """A client seen before still has its times and jti checked, token by token."""
    reader = IdentityReader(Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri))
    reader.read(fake.claims("demo:x"), clock(), "k1")

    with pytest.raises(error):
        reader.read(fake.claims("demo:x", extra=change), clock(), "k1")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"scope": "demo:y"}, id="scope"),
        pytest.param({"consumer": org("314240979")}, id="consumer"),
        pytest.param({"supplier": org(WRITER)}, id="supplier"),
        pytest.param({"client_amr": "virksomhetssertifikat"}, id="client-amr"),
    ],
)
def test_reader_tells_clients_apart(
    fake: FakeMaskinporten, clock: ManualClock, change: dict[str, Any]
) -> None:
    """A payload that differs outside exp, iat, nbf and jti is read anew."""
    settings = Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri)
    reader = IdentityReader(settings)
    reader.read(fake.claims("demo:x"), clock(), "k1")
    claims = fake.claims("demo:x", extra=change)

    assert reader.read(claims, clock(), "k1") == read_identity(
        claims, settings, clock(), kid="k1"
    )


def test_reader_remembers_only_what_passed(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """A refused payload is refused again, and the table stays bounded."""
    reader = IdentityReader(
        Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri, allowed_consumers=[WRITER])
    )
    outsider = fake.claims("demo:x", "314240979")

    for _ in range(2):
        with pytest.raises(ConsumerNotAllowed):
            reader.read(outsider, clock(), "k1")
    for n in range(5000):
        reader.read(fake.claims(f"demo:x{n}", WRITER), clock(), "k1")

    assert 0 < len(reader._seen) <= 4096


def test_reader_table_costs_about_a_kibibyte_per_client(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """What the reader keeps per client stays small (orjson's bytes do not)."""
    reader = IdentityReader(Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri))
    payloads = [fake.claims(f"demo:x{n}") for n in range(500)]

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for claims in payloads:
            reader.read(claims, clock(), "k1")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert len(reader._seen) == 500
    assert grown / 500 < 2048


def test_cache_admits_every_token_in_normal_use(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """Consumers reusing their tokens get each one verified once."""
    verifier = make_verifier(fake, clock, token_cache_size=100)
    tokens = [fake.mint("demo:x") for _ in range(20)]

    for _ in range(60):
        for token in tokens:
            verifier.verify(token)

    stats = verifier.stats()
    assert stats.cache_misses == 20
    assert stats.cache_refused == 0


def test_cache_stops_churning_when_it_thrashes(
    fake: FakeMaskinporten, clock: ManualClock
) -> None:
    """With far more distinct tokens than room, most new ones are not admitted."""
    verifier = make_verifier(fake, clock, token_cache_size=64)
    tokens = [fake.mint("demo:x") for _ in range(700)]

    for _ in range(3):
        for token in tokens:
            verifier.verify(token)

    stats = verifier.stats()
    assert stats.cache_refused > 500
    assert stats.cache_size <= 64
