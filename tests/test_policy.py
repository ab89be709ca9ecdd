from __future__ import annotations

from typing import Any

import pytest

from maskinporten_guard.errors import (
    AuthError,
    ConfigurationError,
    ConsumerNotAllowed,
    InsufficientScope,
    InvalidClaim,
)
from maskinporten_guard.identity import Identity, OrgId, SystemUser
from maskinporten_guard.policy import (
    OPTIONAL,
    PUBLIC,
    Policy,
    Rule,
    authorize,
    require,
)


def org(orgno: str) -> OrgId:
    return OrgId("iso6523-actorid-upis", f"0192:{orgno}", orgno)


def identity(
    scopes: str = "demo:read",
    consumer: str = "991825827",
    *,
    supplier: str | None = None,
    system_user: bool = False,
    audience: tuple[str, ...] = (),
    pid: str | None = None,
) -> Identity:
    return Identity(
        consumer=org(consumer),
        scopes=frozenset(scopes.split()),
        client_id="c",
        client_amr="private_key_jwt",
        jti="j",
        issuer="https://test.maskinporten.no/",
        issued_at=0,
        expires_at=120,
        supplier=org(supplier) if supplier else None,
        audience=audience,
        pid=pid,
        system_user=SystemUser(org("313367002"), ("u",), "s") if system_user else None,
    )


ALLOWED = [
    pytest.param(require(), identity(), (), id="any-valid-token"),
    pytest.param(
        require(all_of=["demo:read"]), identity(), ("demo:read",), id="all-of-one"
    ),
    pytest.param(
        require(all_of=["demo:read", "demo:write"]),
        identity("demo:write demo:read demo:x"),
        ("demo:read", "demo:write"),
        id="all-of-two",
    ),
    pytest.param(
        require(any_of=["demo:read", "demo:admin"]),
        identity("demo:read"),
        ("demo:read",),
        id="any-of",
    ),
    pytest.param(
        require(any_of=["demo:read"], consumers=["991825827"]),
        identity(),
        ("demo:read",),
        id="consumer-listed",
    ),
    pytest.param(
        require(suppliers=["889640782"]),
        identity(supplier="889640782"),
        (),
        id="supplier-listed",
    ),
    pytest.param(
        require(delegation="require"),
        identity(supplier="889640782"),
        (),
        id="delegation-required",
    ),
    pytest.param(
        require(system_user=True), identity(system_user=True), (), id="system-user"
    ),
    pytest.param(
        require(audience=["https://api/"]),
        identity(audience=("https://api/",)),
        (),
        id="audience",
    ),
    pytest.param(require(pid=True), identity(pid="01017012345"), (), id="pid"),
]


@pytest.mark.parametrize(("requirement", "who", "scopes"), ALLOWED)
def test_allows(requirement: Any, who: Identity, scopes: tuple[str, ...]) -> None:
    """A token meeting the requirement passes with the scopes that authorised it."""
    assert authorize(requirement, who) == scopes


REFUSED = [
    pytest.param(
        require(all_of=["demo:read", "demo:write"]),
        identity("demo:read"),
        InsufficientScope,
        id="all-of-missing-one",
    ),
    pytest.param(
        require(any_of=["demo:write"]),
        identity("demo:read"),
        InsufficientScope,
        id="any-of-none",
    ),
    pytest.param(
        require(all_of=["demo:read"]),
        identity("demo:read.all"),
        InsufficientScope,
        id="no-prefix-match",
    ),
    pytest.param(
        require(all_of=["demo:read"]),
        identity("xdemo:read"),
        InsufficientScope,
        id="no-suffix-match",
    ),
    pytest.param(
        require(all_of=["demo:read"]),
        identity("demo:readdemo:write"),
        InsufficientScope,
        id="no-substring-match",
    ),
    pytest.param(
        require(consumers=["889640782"]),
        identity(),
        ConsumerNotAllowed,
        id="consumer-not-listed",
    ),
    pytest.param(
        require(consumers=["889640782"]),
        identity(consumer="991825827", supplier="889640782"),
        ConsumerNotAllowed,
        id="supplier-is-not-consumer",
    ),
    pytest.param(
        require(consumers=["313367002"]),
        identity(consumer="974761076", system_user=True),
        ConsumerNotAllowed,
        id="system-user-org-is-not-consumer",
    ),
    pytest.param(
        require(delegation="forbid"),
        identity(supplier="889640782"),
        ConsumerNotAllowed,
        id="delegation-forbidden",
    ),
    pytest.param(
        require(delegation="require"),
        identity(),
        ConsumerNotAllowed,
        id="delegation-missing",
    ),
    pytest.param(
        require(suppliers=["991825827"]),
        identity(consumer="889640782", supplier="974761076"),
        ConsumerNotAllowed,
        id="supplier-not-listed",
    ),
    pytest.param(
        require(system_user=True), identity(), ConsumerNotAllowed, id="not-system-user"
    ),
    pytest.param(
        require(audience=["https://api/"]),
        identity(),
        InvalidClaim,
        id="audience-missing",
    ),
    pytest.param(
        require(audience=["https://api/"]),
        identity(audience=("https://other/",)),
        InvalidClaim,
        id="audience-other",
    ),
    pytest.param(require(pid=True), identity(), InvalidClaim, id="pid-missing"),
]


@pytest.mark.parametrize(("requirement", "who", "error"), REFUSED)
def test_refuses(requirement: Any, who: Identity, error: type[AuthError]) -> None:
    """A token short of the requirement is refused with the right error."""
    with pytest.raises(error):
        authorize(requirement, who)


def test_insufficient_scope_names_required_scopes() -> None:
    """The 403 challenge lists the scopes that would have been enough."""
    with pytest.raises(InsufficientScope) as caught:
        authorize(require(any_of=["demo:b", "demo:a"]), identity("demo:x"))

    challenge = caught.value.www_authenticate("api")
    assert challenge is not None
    assert 'scope="demo:a demo:b"' in challenge
    assert 'error="insufficient_scope"' in challenge


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: require(all_of="demo:read"), id="scope-string"),
        pytest.param(lambda: require(all_of=["read"]), id="scope-without-prefix"),
        pytest.param(lambda: require(any_of=["demo:a demo:b"]), id="scope-with-space"),
        pytest.param(lambda: require(consumers=["123456789"]), id="bad-orgno"),
        pytest.param(lambda: require(suppliers=["12345678"]), id="short-orgno"),
        pytest.param(
            lambda: require(delegation="maybe"),  # type: ignore[arg-type]
            id="bad-delegation",
        ),
        pytest.param(
            lambda: require(delegation="forbid", suppliers=["991825827"]),
            id="suppliers-with-forbid",
        ),
        pytest.param(lambda: Rule("inspections", PUBLIC), id="relative-pattern"),
        pytest.param(lambda: Rule("/x/{id:nope}", PUBLIC), id="unknown-convertor"),
    ],
)
def test_bad_configuration_is_refused(build: Any) -> None:
    """Rules and requirements are checked when built, with a clear error."""
    with pytest.raises(ConfigurationError):
        build()


def test_first_matching_rule_wins() -> None:
    """Rules are tried in order, by path pattern and method."""
    read = Rule("/inspections/{id}", require(all_of=["demo:read"]), methods={"get"})
    write = Rule("/inspections/{id}", require(all_of=["demo:write"]))
    health = Rule("/health", PUBLIC)
    policy = Policy([health, read, write])

    assert policy.match("GET", "/inspections/7") is read
    assert policy.match("HEAD", "/inspections/7") is read
    assert policy.match("DELETE", "/inspections/7") is write
    assert policy.match("GET", "/health") is health
    assert policy.match("GET", "/health/x") is policy.default
    assert policy.match("GET", "/inspections/7/x") is policy.default


def test_default_rule_fails_closed() -> None:
    """Unmatched routes need a token and are then refused, unless configured."""
    policy = Policy([Rule("/a", OPTIONAL)])

    access = policy.default.access

    assert policy.fail_closed
    assert access == require()
    with pytest.raises(ConsumerNotAllowed):
        authorize(require(), identity(), fail_closed=True)
    assert not Policy(default=PUBLIC).fail_closed
