"""
Strict parsing of a compact JWS, before any key lookup or signature check.

A Maskinporten access token is `header.payload.signature`, each part base64url
without padding, the first two UTF-8 JSON objects. This module refuses anything
else, in one pass and before the cryptography runs:

- not exactly three non-empty base64url parts (a five-part JWE is named as such);
- padding, characters outside the base64url alphabet, or non-canonical trailing
  bits (which would let one signature be written in several ways);
- JSON that is not an object, not UTF-8, has duplicate members (RFC 7515
  section 5.2 lets parsers pick either; this one refuses), NaN or Infinity, or
  nests deeper than the parser allows;
- a token longer than `max_bytes`;
- an `alg` outside the allow-list, checked here so that `none` and the HMAC
  algorithms never reach a key lookup or the network (RFC 8725 section 3.1);
- `crit` (RFC 7515 section 4.1.11: no extension is understood here), `zip`,
  and the key-locating parameters `jku`, `x5u`, `jwk` and `x5c`, which would
  let the token choose its own key (RFC 8725 section 3.10). Maskinporten sends
  none of them.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ._strict_json import StrictJSONError, parse_object
from .errors import MalformedToken, UnsupportedAlgorithm

__all__ = ["ParsedToken", "parse_compact"]

# base64url maps onto the standard alphabet; the standard-only characters and
# padding map to "!", which the strict decoder refuses like any other stranger.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")

# In a final group of two or three characters, the last one carries bits that
# fall outside the decoded bytes; canonical encoders leave them zero.
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}

_REFUSED_HEADERS = frozenset({"crit", "zip", "jku", "x5u", "jwk", "x5c", "enc"})
_ACCEPTED_TYP = frozenset({"JWT", "at+jwt", "at+JWT", "application/at+jwt"})
_MAX_KID = 256


class ParsedToken(NamedTuple):
    """A compact JWS taken apart and checked for shape, not yet for trust."""

    header: Mapping[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str


def _b64decode(part: bytes, what: str) -> bytes:
    """Decode one part, already mapped onto the standard alphabet."""
    rest = len(part) % 4
    if not part or rest == 1 or (rest and part[-1] not in _CANONICAL_LAST[rest]):
        raise MalformedToken(f"the token's {what} is not canonical base64url")
    try:
        return binascii.a2b_base64(part + _PADDING[rest], strict_mode=True)
    except binascii.Error as exc:
        raise MalformedToken(f"the token's {what} is not base64url") from exc


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        return parse_object(data)
    except StrictJSONError as exc:
        raise MalformedToken(f"the token's {what} {exc.problem}") from None


class _Header(NamedTuple):
    fields: Mapping[str, Any]
    alg: str
    kid: str


# Headers repeat: every token signed with one key has the same header segment.
# Remembering the few seen saves a decode and a JSON parse per token.
_headers: dict[tuple[bytes, frozenset[str]], _Header] = {}
_MAX_HEADERS = 64


def _read_header(part: bytes, algorithms: frozenset[str]) -> _Header:
    cached = _headers.get((part, algorithms))
    if cached is not None:
        return cached

    header = _json_object(_b64decode(part, "header"), "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise UnsupportedAlgorithm(
            "the token's alg is not one of the accepted RSA algorithms"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID:
        raise MalformedToken("the token's header has no usable kid")
    refused = _REFUSED_HEADERS.intersection(header)
    if refused:
        raise MalformedToken(
            f"the token's header carries {', '.join(sorted(refused))}, which "
            "Maskinporten never sends and this verifier does not honour"
        )
    typ = header.get("typ")
    if typ is not None and typ not in _ACCEPTED_TYP:
        raise MalformedToken("the token's typ is not an access token type")

    # Read-only, because one header serves every token that repeats it.
    result = _Header(MappingProxyType(header), alg, kid)
    if len(_headers) >= _MAX_HEADERS:
        _headers.clear()
    _headers[(part, algorithms)] = result

    return result


def parse_compact(
    token: str, *, algorithms: frozenset[str], max_bytes: int
) -> ParsedToken:
    """
    Take a compact JWS apart, refusing every shape Maskinporten never issues.

    Args:
        token: the bearer token as sent.
        algorithms: the `alg` values to accept.
        max_bytes: the longest token accepted.

    Raises:
        MalformedToken: the token is not a strict compact JWS.
        UnsupportedAlgorithm: `alg` is not in the allow-list.
    """
    if len(token) > max_bytes:
        raise MalformedToken(f"the token is longer than {max_bytes} bytes")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedToken("the token has characters outside ASCII") from None
    parts = raw.translate(_TO_STANDARD).split(b".")
    if len(parts) != 3:
        if len(parts) == 5:
            raise MalformedToken("encrypted tokens (JWE) are not accepted")
        raise MalformedToken(
            "the token is not a compact JWS: three base64url parts joined by dots"
        )
    head_part, body_part, sig_part = parts

    header = _read_header(head_part, algorithms)
    claims = _json_object(_b64decode(body_part, "payload"), "payload")
    signature = _b64decode(sig_part, "signature")
    signing_input = raw[: len(head_part) + 1 + len(body_part)]

    return ParsedToken(
        header.fields, claims, signing_input, signature, header.alg, header.kid
    )
