"""
The attack table: requests a hostile or broken client sends, and the answer.

Each `Attack` builds one request from a `FakeMaskinporten` (and may first
change what its `IssuerServer` publishes or how it fails), and names the
status and RFC 6750 error code the guard must answer. The same table runs
through the decision core, the ASGI adapter and the WSGI adapter over real
servers, so all three answer every case alike.

The API under attack has the routes in `ATTACK_RULES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from maskinporten_guard.policy import OPTIONAL, PUBLIC, Rule, require
from maskinporten_guard.testing import OMIT, FakeMaskinporten, IssuerServer, b64url
from maskinporten_guard.testing import org as org_id

READ = "demo:inspections.read"
WRITE = "demo:inspections.write"
WRITER = "991825827"
OTHER = "889640782"
AUDIENCE = "https://api.example.no/"
HOSTILE_SCOPE = "demo:x');DROP_TABLE_grants;--"

ATTACK_RULES = [
    Rule("/health", PUBLIC),
    Rule("/maybe", OPTIONAL),
    Rule("/inspections/{id}", require(all_of=[READ]), {"GET"}),
    Rule("/inspections", require(all_of=[WRITE], consumers=[WRITER]), {"POST"}),
    Rule("/direct", require(any_of=[READ], delegation="forbid")),
    Rule("/system", require(system_user=True)),
    Rule("/audience", require(audience=[AUDIENCE])),
    Rule("/pid", require(pid=True)),
    Rule("/hostile", require(any_of=[HOSTILE_SCOPE])),
]
"""The protected API every attack runs against; unmatched routes fail closed."""


@dataclass(frozen=True)
class Request:
    """What the client sends."""

    method: str = "GET"
    path: str = "/inspections/1"
    authorization: tuple[str, ...] = ()
    query: str = ""


Builder = Callable[[FakeMaskinporten], Request]
Preparer = Callable[[FakeMaskinporten, IssuerServer], None]


@dataclass(frozen=True)
class Attack:
    """One request and the answer it must get."""

    build: Builder
    status: int
    error: str | None = None
    prepare: Preparer | None = field(default=None)


def get(token: str, path: str = "/inspections/1", **options: Any) -> Request:
    return Request(path=path, authorization=(f"Bearer {token}",), **options)


def header_only(value: str) -> Builder:
    return lambda f: Request(authorization=(value,))


def minted(path: str = "/inspections/1", **options: Any) -> Builder:
    scope = options.pop("scope", READ)
    consumer = options.pop("consumer", WRITER)
    return lambda f: get(f.mint(scope, consumer, **options), path)


def claims(**changes: Any) -> Builder:
    return minted(extra=changes)


def raw(head: object, body: object, signature: str = "c2ln") -> Builder:
    """A token from literal parts: dicts become JSON, strings are taken as is."""

    def part(value: object) -> str:
        if isinstance(value, str):
            return value
        return b64url(json.dumps(value))

    return lambda f: get(f"{part(head)}.{part(body)}.{signature}")


def signed_payload(payload: bytes) -> Builder:
    """A correctly signed token whose payload is the given bytes."""
    return lambda f: get(f.sign(payload))


def resigned(transform: Callable[[str], str]) -> Builder:
    return lambda f: get(transform(f.mint(READ)))


def _hmac_with_public_key(f: FakeMaskinporten) -> Request:
    import hashlib
    import hmac

    pem = f.current_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64url(json.dumps({"kid": f.current_key.kid, "alg": "HS256"}))
    body = b64url(json.dumps(f.claims(READ)))
    mac = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return get(f"{head}.{body}.{b64url(mac)}")


def _publish(f: FakeMaskinporten, **jwk_changes: Any) -> str:
    """Publish a new key with changed JWK members; answer a token signed by it."""
    key = f.new_key()
    f.extra_jwks.append(key.jwk(**jwk_changes))
    return f.mint(READ, key=key)


def _publish_then(**jwk_changes: Any) -> tuple[Preparer, Builder]:
    tokens: list[str] = []

    def prepare(f: FakeMaskinporten, server: IssuerServer) -> None:
        tokens.append(_publish(f, **jwk_changes))

    return prepare, lambda f: get(tokens[-1])


def _weak_key() -> tuple[Preparer, Builder]:
    tokens: list[str] = []

    def prepare(f: FakeMaskinporten, server: IssuerServer) -> None:
        key = f.new_key(size=1024)
        f.extra_jwks.append(key.jwk())
        tokens.append(f.mint(READ, key=key))

    return prepare, lambda f: get(tokens[-1])


def _duplicate_kid() -> tuple[Preparer, Builder]:
    tokens: list[str] = []

    def prepare(f: FakeMaskinporten, server: IssuerServer) -> None:
        key, twin = f.new_key(), f.new_key()
        f.extra_jwks.append(key.jwk())
        f.extra_jwks.append(twin.jwk(kid=key.kid))
        tokens.append(f.mint(READ, key=key))

    return prepare, lambda f: get(tokens[-1])


def _ec_key_same_kid() -> tuple[Preparer, Builder]:
    def prepare(f: FakeMaskinporten, server: IssuerServer) -> None:
        numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
        f.extra_jwks.append(
            {
                "kty": "EC",
                "crv": "P-256",
                "kid": "ec-key",
                "use": "sig",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            }
        )

    return prepare, lambda f: get(f.mint(READ, header={"kid": "ec-key"}))


def _private_key_published() -> tuple[Preparer, Builder]:
    tokens: list[str] = []

    def prepare(f: FakeMaskinporten, server: IssuerServer) -> None:
        key = f.new_key()
        d = key.private_key.private_numbers().d
        f.extra_jwks.append(key.jwk(d=b64url(d.to_bytes((d.bit_length() + 7) // 8))))
        tokens.append(f.mint(READ, key=key))

    return prepare, lambda f: get(tokens[-1])


def _fault(name: str) -> Preparer:
    def prepare(f: FakeMaskinporten, server: IssuerServer) -> None:
        server.fault = name  # type: ignore[assignment]
        server.delay = 0.2

    return prepare


def _attack(build: Builder, status: int, error: str | None = None) -> Attack:
    return Attack(build, status, error)


def _keys_attack(
    pair: tuple[Preparer, Builder], status: int, error: str | None = None
) -> Attack:
    prepare, build = pair
    return Attack(build, status, error, prepare)


INVALID = "invalid_token"
REQUEST = "invalid_request"
SCOPE = "insufficient_scope"

HEADER_ATTACKS = [
    pytest.param(_attack(lambda f: Request(), 401), id="hdr-none"),
    pytest.param(_attack(header_only(""), 401), id="hdr-empty"),
    pytest.param(_attack(header_only("Basic dXNlcjpwdw=="), 401), id="hdr-basic"),
    pytest.param(_attack(header_only("Bearer"), 400, REQUEST), id="hdr-scheme-only"),
    pytest.param(_attack(header_only("Bearer "), 400, REQUEST), id="hdr-scheme-space"),
    pytest.param(_attack(header_only("Bearer a b"), 400, REQUEST), id="hdr-two-creds"),
    pytest.param(
        _attack(header_only("Bearer a, Bearer b"), 400, REQUEST), id="hdr-comma-list"
    ),
    pytest.param(
        _attack(
            lambda f: Request(authorization=("Bearer a", "Bearer b")), 400, REQUEST
        ),
        id="hdr-two-headers",
    ),
    pytest.param(
        _attack(lambda f: Request(query="access_token=" + f.mint(READ)), 400, REQUEST),
        id="hdr-query-token",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ), query="access_token=x"), 400, REQUEST),
        id="hdr-header-and-query",
    ),
    pytest.param(
        _attack(header_only("Bearer " + "A" * 20_000), 400, REQUEST),
        id="hdr-oversized",
    ),
    pytest.param(
        _attack(lambda f: Request(authorization=("bearer " + f.mint(READ),)), 200),
        id="hdr-lowercase-scheme-ok",
    ),
    pytest.param(
        _attack(lambda f: Request(authorization=("Bearer   " + f.mint(READ),)), 200),
        id="hdr-extra-spaces-ok",
    ),
    pytest.param(
        _attack(lambda f: Request(authorization=("Bearer\t" + f.mint(READ),)), 401),
        id="hdr-tab-separator",
    ),
    pytest.param(
        _attack(
            lambda f: Request(authorization=("Bearer " + f.mint(READ) + "é",)),
            401,
            INVALID,
        ),
        id="hdr-non-ascii",
    ),
    pytest.param(
        _attack(lambda f: Request(authorization=("MAC " + f.mint(READ),)), 401),
        id="hdr-other-scheme",
    ),
]

SYNTAX_ATTACKS = [
    pytest.param(_attack(lambda f: get("abc"), 401, INVALID), id="syn-one-part"),
    pytest.param(_attack(lambda f: get("a.b"), 401, INVALID), id="syn-two-parts"),
    pytest.param(_attack(lambda f: get("a.b.c.d"), 401, INVALID), id="syn-four-parts"),
    pytest.param(_attack(lambda f: get("a.b.c.d.e"), 401, INVALID), id="syn-jwe"),
    pytest.param(_attack(resigned(lambda t: t + "=="), 401, INVALID), id="syn-padding"),
    pytest.param(
        _attack(
            resigned(lambda t: t.replace("-", "+").replace("_", "/")), 401, INVALID
        ),
        id="syn-standard-alphabet",
    ),
    pytest.param(
        _attack(resigned(lambda t: t.rsplit(".", 1)[0] + "."), 401, INVALID),
        id="syn-stripped-signature",
    ),
    pytest.param(
        _attack(resigned(lambda t: "." + t.split(".", 1)[1]), 401, INVALID),
        id="syn-empty-header",
    ),
    pytest.param(
        _attack(
            signed_payload(b'{"scope":"a:b","scope":"demo:inspections.read"}'),
            401,
            INVALID,
        ),
        id="syn-duplicate-member",
    ),
    pytest.param(_attack(signed_payload(b'{"exp":NaN}'), 401, INVALID), id="syn-nan"),
    pytest.param(
        _attack(signed_payload(b"[" * 1500 + b"]" * 1500), 401, INVALID),
        id="syn-deep-nesting",
    ),
    pytest.param(
        _attack(signed_payload(b'{"scope":"\xff"}'), 401, INVALID), id="syn-not-utf8"
    ),
    pytest.param(
        _attack(signed_payload(b"\xef\xbb\xbf{}"), 401, INVALID), id="syn-bom"
    ),
    pytest.param(
        _attack(signed_payload(b'"just a string"'), 401, INVALID), id="syn-not-object"
    ),
    pytest.param(
        _attack(minted(extra={"padding": "x" * 9000}), 400, REQUEST), id="syn-too-large"
    ),
    pytest.param(
        _attack(raw({"alg": "RS256", "kid": "k"}, "!!!!"), 401, INVALID),
        id="syn-bad-characters",
    ),
]

SIGNATURE_ATTACKS = [
    pytest.param(
        _attack(
            lambda f: get(f.sign(f.claims(READ), alg="none", header={"kid": OMIT})),
            401,
            INVALID,
        ),
        id="sig-alg-none",
    ),
    pytest.param(
        _attack(raw({"alg": "none"}, {"scope": READ}, ""), 401, INVALID),
        id="sig-alg-none-unsigned",
    ),
    pytest.param(
        _attack(_hmac_with_public_key, 401, INVALID), id="sig-hmac-public-key"
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, alg="RS384")), 401, INVALID),
        id="sig-alg-differs-from-key",
    ),
    pytest.param(
        _attack(lambda f: get(f.sign(f.claims(READ), alg="PS256")), 401, INVALID),
        id="sig-ps256",
    ),
    pytest.param(
        _attack(lambda f: get(f.sign(f.claims(READ), alg="ES256")), 401, INVALID),
        id="sig-es256",
    ),
    pytest.param(
        _attack(resigned(lambda t: t.rsplit(".", 1)[0] + ".AAAA"), 401, INVALID),
        id="sig-truncated",
    ),
    pytest.param(
        _attack(
            resigned(lambda t: t.rsplit(".", 1)[0] + "." + b64url(b"\0" * 256)),
            401,
            INVALID,
        ),
        id="sig-zeros",
    ),
    pytest.param(
        _attack(
            lambda f: get(
                f.mint(READ).rsplit(".", 1)[0] + "." + f.mint(WRITE).rsplit(".", 1)[1]
            ),
            401,
            INVALID,
        ),
        id="sig-from-other-token",
    ),
    pytest.param(
        _attack(
            lambda f: get(f.mint(READ, key=f.new_key(kid=f.current_key.kid))),
            401,
            INVALID,
        ),
        id="sig-forged-same-kid",
    ),
    pytest.param(
        _attack(
            lambda f: get(_flip_bit(f.mint(READ))),
            401,
            INVALID,
        ),
        id="sig-bit-flipped",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, key=f.new_key())), 401, INVALID),
        id="sig-unpublished-key",
    ),
]


def _flip_bit(token: str) -> str:
    head, body, sig = token.split(".")
    flipped = "B" if sig[10] == "A" else "A"
    return f"{head}.{body}.{sig[:10]}{flipped}{sig[11:]}"


def _header(**changes: Any) -> Builder:
    return lambda f: get(f.mint(READ, header=changes))


HEADER_PARAMETER_ATTACKS = [
    pytest.param(_attack(_header(kid=OMIT), 401, INVALID), id="hp-kid-missing"),
    pytest.param(_attack(_header(kid=7), 401, INVALID), id="hp-kid-number"),
    pytest.param(_attack(_header(kid=""), 401, INVALID), id="hp-kid-empty"),
    pytest.param(_attack(_header(kid="k" * 300), 401, INVALID), id="hp-kid-long"),
    pytest.param(
        _attack(_header(kid="../../../etc/passwd"), 401, INVALID), id="hp-kid-traversal"
    ),
    pytest.param(_attack(_header(kid="' OR '1'='1"), 401, INVALID), id="hp-kid-sql"),
    pytest.param(
        _attack(_header(jku="https://evil.example/jwk"), 401, INVALID), id="hp-jku"
    ),
    pytest.param(
        _attack(_header(x5u="https://evil.example/cert"), 401, INVALID), id="hp-x5u"
    ),
    pytest.param(
        _attack(
            lambda f: _embedded_jwk(f),
            401,
            INVALID,
        ),
        id="hp-embedded-jwk",
    ),
    pytest.param(_attack(_header(x5c=["MIIB"]), 401, INVALID), id="hp-x5c"),
    pytest.param(_attack(_header(crit=["exp"]), 401, INVALID), id="hp-crit"),
    pytest.param(_attack(_header(zip="DEF"), 401, INVALID), id="hp-zip"),
    pytest.param(_attack(_header(enc="A256GCM"), 401, INVALID), id="hp-enc"),
    pytest.param(_attack(_header(typ="JWE"), 401, INVALID), id="hp-typ-other"),
    pytest.param(
        _attack(
            lambda f: get(f.sign(f.mint(READ).encode(), header={"cty": "JWT"})),
            401,
            INVALID,
        ),
        id="hp-nested-token",
    ),
    pytest.param(_attack(_header(typ="at+jwt"), 200), id="hp-typ-at-jwt-ok"),
]


def _embedded_jwk(f: FakeMaskinporten) -> Request:
    attacker = f.new_key(kid=f.current_key.kid)
    return get(f.mint(READ, key=attacker, header={"jwk": attacker.jwk()}))


KEY_ATTACKS = [
    pytest.param(
        _keys_attack(_publish_then(use="enc"), 401, INVALID), id="key-use-enc"
    ),
    pytest.param(
        _keys_attack(_publish_then(key_ops=["encrypt"]), 401, INVALID),
        id="key-ops-without-verify",
    ),
    pytest.param(_keys_attack(_weak_key(), 401, INVALID), id="key-rsa-1024"),
    pytest.param(_keys_attack(_duplicate_kid(), 401, INVALID), id="key-duplicate-kid"),
    pytest.param(_keys_attack(_ec_key_same_kid(), 401, INVALID), id="key-ec-kid"),
    pytest.param(
        _keys_attack(_publish_then(alg="RS512"), 401, INVALID), id="key-alg-mismatch"
    ),
    pytest.param(
        _keys_attack(_publish_then(kty="oct"), 401, INVALID), id="key-kty-oct"
    ),
    pytest.param(
        _keys_attack(_private_key_published(), 401, INVALID), id="key-private-published"
    ),
    pytest.param(Attack(minted(), 503, None, _fault("redirect")), id="jwks-redirect"),
    pytest.param(Attack(minted(), 503, None, _fault("huge")), id="jwks-huge"),
    pytest.param(Attack(minted(), 503, None, _fault("gzip")), id="jwks-gzip"),
    pytest.param(Attack(minted(), 503, None, _fault("garbage")), id="jwks-garbage"),
    pytest.param(Attack(minted(), 503, None, _fault("empty")), id="jwks-empty"),
    pytest.param(Attack(minted(), 503, None, _fault("down")), id="jwks-down"),
    pytest.param(Attack(minted(), 503, None, _fault("drip")), id="jwks-drip"),
]

NOW_OFFSET = 0


def _at(offset: float, **options: Any) -> Builder:
    return lambda f: get(f.mint(READ, WRITER, issued_at=f.clock() + offset, **options))


CLAIM_ATTACKS = [
    pytest.param(_attack(minted(), 200), id="clm-valid"),
    pytest.param(_attack(_at(-120 - 29), 200), id="clm-exp-within-leeway"),
    pytest.param(_attack(_at(-120 - 31), 401, INVALID), id="clm-expired"),
    pytest.param(_attack(_at(25), 200), id="clm-iat-skew-ok"),
    pytest.param(_attack(_at(40), 401, INVALID), id="clm-iat-future"),
    pytest.param(_attack(claims(exp=OMIT), 401, INVALID), id="clm-exp-missing"),
    pytest.param(_attack(claims(exp="9999999999"), 401, INVALID), id="clm-exp-string"),
    pytest.param(_attack(claims(exp=True), 401, INVALID), id="clm-exp-bool"),
    pytest.param(_attack(claims(exp=1e309), 401, INVALID), id="clm-exp-infinite"),
    pytest.param(_attack(claims(iat=OMIT), 401, INVALID), id="clm-iat-missing"),
    pytest.param(_attack(claims(iat="0"), 401, INVALID), id="clm-iat-string"),
    pytest.param(_attack(claims(nbf=9_999_999_999), 401, INVALID), id="clm-nbf-future"),
    pytest.param(_attack(claims(iss=OMIT), 401, INVALID), id="clm-iss-missing"),
    pytest.param(
        _attack(claims(iss="https://idporten.no"), 401, INVALID), id="clm-iss-idporten"
    ),
    pytest.param(
        _attack(claims(iss="https://maskinporten.no/"), 401, INVALID),
        id="clm-iss-other-env",
    ),
    pytest.param(
        _attack(claims(iss="https://test.maskinporten.no.evil.example/"), 401, INVALID),
        id="clm-iss-lookalike",
    ),
    pytest.param(
        _attack(claims(iss="https://sky.maskinporten.no/"), 401, INVALID),
        id="clm-iss-skyporten",
    ),
    pytest.param(_attack(claims(token_type=OMIT), 401, INVALID), id="clm-type-missing"),
    pytest.param(_attack(claims(token_type="DPoP"), 401, INVALID), id="clm-type-dpop"),
    pytest.param(_attack(claims(scope=OMIT), 401, INVALID), id="clm-scope-missing"),
    pytest.param(_attack(claims(scope=[READ]), 401, INVALID), id="clm-scope-list"),
    pytest.param(
        _attack(claims(scope=READ + "\n" + WRITE), 401, INVALID), id="clm-scope-newline"
    ),
    pytest.param(
        _attack(minted(scope=READ + ".all"), 403, SCOPE), id="clm-scope-prefix"
    ),
    pytest.param(_attack(minted(scope="x" + READ), 403, SCOPE), id="clm-scope-suffix"),
    pytest.param(_attack(minted(scope=READ.upper()), 403, SCOPE), id="clm-scope-case"),
    pytest.param(
        _attack(minted(scope=f"{READ} {READ}"), 200), id="clm-scope-repeated-ok"
    ),
    pytest.param(
        _attack(claims(consumer=OMIT), 401, INVALID), id="clm-consumer-missing"
    ),
    pytest.param(
        _attack(claims(consumer="0192:991825827"), 401, INVALID),
        id="clm-consumer-string",
    ),
    pytest.param(
        _attack(claims(consumer=org_id("123456789")), 401, INVALID),
        id="clm-consumer-checksum",
    ),
    pytest.param(
        _attack(
            claims(
                consumer={"authority": "iso6523-actorid-upis", "ID": "9908:991825827"}
            ),
            401,
            INVALID,
        ),
        id="clm-consumer-other-icd",
    ),
    pytest.param(
        _attack(
            claims(
                consumer={"authority": "iso6523-actorid-upis", "ID": "0192:x:991825827"}
            ),
            401,
            INVALID,
        ),
        id="clm-consumer-last-colon",
    ),
    pytest.param(
        _attack(claims(supplier={"ID": "0192:991825827"}), 401, INVALID),
        id="clm-supplier-malformed",
    ),
    pytest.param(
        _attack(claims(client_id=OMIT), 401, INVALID), id="clm-client-missing"
    ),
    pytest.param(_attack(claims(jti=OMIT), 401, INVALID), id="clm-jti-missing"),
    pytest.param(
        _attack(
            lambda f: Request(
                "POST", "/inspections", (f"Bearer {f.mint(WRITE, WRITER)}",)
            ),
            200,
        ),
        id="clm-writer-ok",
    ),
    pytest.param(
        _attack(
            lambda f: Request(
                "POST", "/inspections", (f"Bearer {f.mint(WRITE, OTHER)}",)
            ),
            403,
            SCOPE,
        ),
        id="clm-consumer-not-allowed",
    ),
    pytest.param(
        _attack(
            lambda f: Request(
                "POST",
                "/inspections",
                (f"Bearer {f.mint(WRITE, OTHER, supplier=WRITER)}",),
            ),
            403,
            SCOPE,
        ),
        id="clm-supplier-in-allow-list",
    ),
    pytest.param(
        _attack(
            lambda f: Request(
                "POST",
                "/inspections",
                (f"Bearer {f.mint(WRITE, OTHER, system_user=WRITER)}",),
            ),
            403,
            SCOPE,
        ),
        id="clm-system-user-org-in-allow-list",
    ),
    pytest.param(
        _attack(
            lambda f: Request(
                "POST",
                "/inspections",
                (f"Bearer {f.mint(WRITE, OTHER, client_id=WRITER)}",),
            ),
            403,
            SCOPE,
        ),
        id="clm-client-id-in-allow-list",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, supplier=OTHER), "/direct"), 403, SCOPE),
        id="clm-delegation-forbidden",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ), "/system"), 403, SCOPE),
        id="clm-not-system-user",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, system_user=OTHER), "/system"), 200),
        id="clm-system-user-ok",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ), "/audience"), 401, INVALID),
        id="clm-aud-missing",
    ),
    pytest.param(
        _attack(
            lambda f: get(f.mint(READ, audience="unspecified"), "/audience"),
            401,
            INVALID,
        ),
        id="clm-aud-unspecified",
    ),
    pytest.param(
        _attack(
            lambda f: get(f.mint(READ, audience=AUDIENCE.rstrip("/")), "/audience"),
            401,
            INVALID,
        ),
        id="clm-aud-lookalike",
    ),
    pytest.param(
        _attack(
            lambda f: get(f.mint(READ, audience=["x", AUDIENCE]), "/audience"), 200
        ),
        id="clm-aud-list-ok",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ), "/pid"), 401, INVALID), id="clm-pid-missing"
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, pid="0101701234"), "/pid"), 401, INVALID),
        id="clm-pid-short",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, pid="01017012345"), "/pid"), 200),
        id="clm-pid-ok",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ), "/unlisted"), 403, SCOPE),
        id="clm-unmatched-route-fails-closed",
    ),
    pytest.param(
        _attack(
            lambda f: Request("DELETE", "/inspections/1", (f"Bearer {f.mint(READ)}",)),
            403,
            SCOPE,
        ),
        id="clm-unmatched-method-fails-closed",
    ),
    pytest.param(_attack(lambda f: Request(path="/health"), 200), id="clm-public"),
    pytest.param(
        _attack(lambda f: Request(path="/maybe"), 200), id="clm-optional-anonymous"
    ),
    pytest.param(
        _attack(lambda f: get("garbage", "/maybe"), 401, INVALID),
        id="clm-optional-bad-token",
    ),
]

HOSTILE = {
    "client_id": 'evil"\n{"outcome":"allow"}\r\n\u2028\x00',
    "jti": "j\x00\ud800'; DROP TABLE grant_usage; --",
    "delegation_source": "https://x/\n\x1b[31mred",
}

STORAGE_ATTACKS = [
    pytest.param(
        _attack(lambda f: get(f.mint(HOSTILE_SCOPE, extra=HOSTILE), "/hostile"), 200),
        id="store-hostile-values-allowed",
    ),
    pytest.param(
        _attack(
            lambda f: get(
                f.mint(HOSTILE_SCOPE, OTHER, supplier=WRITER, extra=HOSTILE), "/hostile"
            ),
            200,
        ),
        id="store-hostile-delegated",
    ),
    pytest.param(
        _attack(lambda f: get(f.mint(READ, extra=HOSTILE), "/hostile"), 403, SCOPE),
        id="store-hostile-refused",
    ),
    pytest.param(
        _attack(
            lambda f: get(
                f.mint(
                    HOSTILE_SCOPE, system_user=OTHER, system_id='s\n"x', extra=HOSTILE
                ),
                "/hostile",
            ),
            200,
        ),
        id="store-hostile-system-user",
    ),
]

ATTACKS = (
    HEADER_ATTACKS
    + SYNTAX_ATTACKS
    + SIGNATURE_ATTACKS
    + HEADER_PARAMETER_ATTACKS
    + KEY_ATTACKS
    + CLAIM_ATTACKS
    + STORAGE_ATTACKS
)
"""Every case; pass to `pytest.mark.parametrize("attack", ATTACKS)`."""
