from __future__ import annotations

import pytest

from maskinporten_guard.errors import MalformedToken, UnsupportedAlgorithm
from maskinporten_guard.jws import parse_compact
from maskinporten_guard.testing import FakeMaskinporten, b64url

ALGS = frozenset({"RS256", "RS384", "RS512"})
HEAD = b64url('{"kid":"k1","alg":"RS256"}')
BODY = b64url('{"scope":"demo:x"}')
SIG = b64url(b"\x01" * 256)


def parse(token: str) -> object:
    return parse_compact(token, algorithms=ALGS, max_bytes=8192)


def tok(head: str = HEAD, body: str = BODY, sig: str = SIG) -> str:
    return ".".join([head, body, sig])


def header(extra: str) -> str:
    return b64url('{"alg":"RS256","kid":"k"' + extra + "}")


MALFORMED = [
    pytest.param("", id="empty"),
    pytest.param("abc", id="one-part"),
    pytest.param(HEAD + "." + BODY, id="two-parts"),
    pytest.param(tok() + ".x", id="four-parts"),
    pytest.param(tok() + ".x.y", id="five-parts-jwe"),
    pytest.param(tok(sig=""), id="empty-signature"),
    pytest.param(tok(body=""), id="empty-payload"),
    pytest.param(tok(head=HEAD + "="), id="padding"),
    pytest.param(tok(sig=SIG + "="), id="signature-padding"),
    pytest.param(tok(body=BODY + "+"), id="standard-alphabet"),
    pytest.param(tok() + " ", id="trailing-space"),
    pytest.param(" " + tok(), id="leading-space"),
    pytest.param(tok(body=BODY + "\n"), id="newline"),
    pytest.param(tok() + "\u00e9", id="non-ascii"),
    pytest.param(tok(sig=SIG[:-1] + "B"), id="non-canonical-bits"),
    pytest.param(tok(sig=SIG + "AAA"), id="impossible-length"),
    pytest.param(tok(head=b64url("[1]")), id="header-array"),
    pytest.param(tok(head=b64url("nope")), id="header-not-json"),
    pytest.param(tok(body=b64url("null")), id="payload-null"),
    pytest.param(tok(body=b64url('"x"')), id="payload-string"),
    pytest.param(tok(body=b64url('{"a":1,"a":2}')), id="payload-duplicate-member"),
    pytest.param(tok(head=header(',"kid":"j"')), id="header-duplicate-member"),
    pytest.param(tok(body=b64url('{"exp":NaN}')), id="nan"),
    pytest.param(tok(body=b64url('{"exp":-Infinity}')), id="infinity"),
    pytest.param(tok(body=b64url("[" * 5000 + "]" * 5000)), id="deep-nesting"),
    pytest.param(tok(body=b64url(b'{"a":"\xff"}')), id="not-utf8"),
    pytest.param(tok(body=b64url("{}".encode("utf-16"))), id="utf16-json"),
    pytest.param(tok(body=b64url(b"\xef\xbb\xbf{}")), id="utf8-bom"),
    pytest.param(tok(body=b64url('{"a":' + "1" * 5000 + "}")), id="huge-int"),
    pytest.param(tok(body="A" * 9000), id="oversized"),
    pytest.param(
        tok(head=b64url('{"alg":"RS256","kid":"' + "k" * 300 + '"}')),
        id="kid-too-long",
    ),
    pytest.param(tok(head=header(',"zip":"DEF"')), id="zip"),
    pytest.param(tok(head=header(',"jwk":{}')), id="embedded-jwk"),
    pytest.param(tok(head=header(',"x5u":"https://x"')), id="x5u"),
    pytest.param(tok(head=header(',"jku":"https://x"')), id="jku"),
    pytest.param(tok(head=header(',"x5c":[]')), id="x5c"),
    pytest.param(tok(head=header(',"crit":["b64"]')), id="crit"),
    pytest.param(tok(head=header(',"enc":"A128GCM"')), id="enc"),
    pytest.param(tok(head=header(',"typ":"JWE"')), id="typ-other"),
]


@pytest.mark.parametrize("token", MALFORMED)
def test_refuses_malformed(token: str) -> None:
    """Every shape Maskinporten never issues is refused before the crypto."""
    with pytest.raises(MalformedToken):
        parse(token)


@pytest.mark.parametrize(
    "alg",
    [
        pytest.param("none", id="none"),
        pytest.param("HS256", id="hs256"),
        pytest.param("ES256", id="es256"),
        pytest.param("PS256", id="ps256"),
        pytest.param("rs256", id="lowercase"),
        pytest.param(None, id="null"),
        pytest.param(["RS256"], id="list"),
    ],
)
def test_refuses_algorithms_outside_allow_list(alg: object) -> None:
    """`alg` is checked against the allow-list, exactly."""
    import json

    head = b64url(json.dumps({"kid": "k", "alg": alg}))
    with pytest.raises(UnsupportedAlgorithm):
        parse(f"{head}.{BODY}.{SIG}")


def test_parses_real_shape(maskinporten: FakeMaskinporten) -> None:
    """A minted token parses into header, claims, signing input and signature."""
    token = maskinporten.mint("demo:x")

    parsed = parse_compact(token, algorithms=ALGS, max_bytes=8192)

    assert parsed.alg == "RS256"
    assert parsed.kid == maskinporten.current_key.kid
    assert parsed.header == {"kid": parsed.kid, "alg": "RS256"}
    assert parsed.claims["scope"] == "demo:x"
    assert parsed.signing_input == token.rsplit(".", 1)[0].encode()
    assert len(parsed.signature) == 256


def test_accepts_unknown_harmless_header_member() -> None:
    """A header member with no security meaning is ignored, as RFC 7515 allows."""
    parsed = parse_compact(
        tok(head=header(',"x-trace":"1"')), algorithms=ALGS, max_bytes=8192
    )

    assert parsed.kid == "k"
