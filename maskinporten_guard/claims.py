"""
The claims of a Maskinporten access token, checked one function per claim.

`read_identity` runs them in order and builds the `Identity`. Each check
answers `InvalidClaim` (or `TokenExpired`) naming the claim. The rules follow
what Maskinporten issues and what Digdir asks of a provider:

- `iss` is compared exactly, so ID-porten (`https://idporten.no`, no slash) and
  look-alikes never pass;
- `exp` and `iat` are required JSON numbers (a numeric string, a boolean or a
  non-finite number is refused); `nbf` is checked only when present;
- `scope` is one space-separated string (RFC 6749 section 3.3) and is split,
  never compared whole or by substring;
- `consumer` decides access and is parsed strictly: authority
  `iso6523-actorid-upis`, ICD 0192 and a nine-digit orgno with a valid check
  digit. Sub-unit and eSeal ids are refused unless the settings accept them;
- `aud` is checked only when the settings name an audience, then exactly;
- `jti` is required but never checked for reuse: a consumer legitimately
  sends the same token until it expires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import orjson

from .errors import ConsumerNotAllowed, InvalidClaim, TokenExpired
from .identity import _BLANK_FIELDS, Consent, Identity, OrgId, SystemUser
from .orgno import NORWEGIAN_ICD, ORGNO_AUTHORITY, is_valid_orgno
from .settings import Settings

__all__ = ["IdentityReader", "read_identity"]

_SCOPE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*")
_ESEAL_AUTHORITY = "etsi-en-319-412"
_ESEAL_PREFIX = "NTRNO-"
_MAX_TIME = 2**53
_MAX_TEXT = 1024
_SYSTEM_USER = "urn:altinn:systemuser"
_CONSENT = "urn:altinn:consent"
_REMEMBERED = 4096
K = TypeVar("K")
V = TypeVar("V")
_scopes_seen: dict[str, frozenset[str]] = {}
_orgs_seen: dict[tuple[str, str, bool, bool], OrgId] = {}


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # Exact types: bool is an int subclass, and JSON numbers are int or float.
    # The range check also refuses NaN and the infinities a float can hold.
    kind = type(value)
    if (kind is not int and kind is not float) or not 0 <= value < _MAX_TIME:
        raise InvalidClaim(name, f"the token's {name} claim is not a valid time")

    return float(value)


def _required_time(claims: Mapping[str, Any], name: str) -> float:
    value = _time(claims, name)
    if value is None:
        raise InvalidClaim(name, f"the token has no {name} claim")

    return value


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
        raise InvalidClaim(name, f"the token's {name} claim is missing or not text")

    return value


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    return None if claims.get(name) is None else _text(claims, name)


def check_issuer(claims: Mapping[str, Any], issuer: str) -> str:
    """`iss` must equal the configured issuer exactly, trailing slash included."""
    value = claims.get("iss")
    if value != issuer:
        raise InvalidClaim("iss", "the token was not issued by the configured issuer")

    return issuer


def check_times(
    claims: Mapping[str, Any], now: float, leeway: float
) -> tuple[float, float]:
    """`exp` in the future, `iat` not in the future, `nbf` passed; with leeway."""
    expires_at = claims.get("exp")
    issued_at = claims.get("iat")
    # Maskinporten writes both as integers, iat before exp, and no nbf: for
    # such a token within its times, these two tests are every check below.
    if (
        type(expires_at) is int
        and type(issued_at) is int
        and 0 <= issued_at < expires_at < _MAX_TIME
        and "nbf" not in claims
    ):
        # Exact as floats below 2**53, and float comparisons are the cheap ones.
        exp = float(expires_at)
        iat = float(issued_at)
        if now - leeway < exp and iat <= now + leeway:
            return iat, exp

    expires_at = _required_time(claims, "exp")
    issued_at = _required_time(claims, "iat")
    not_before = _time(claims, "nbf")
    if expires_at <= now - leeway:
        raise TokenExpired("the token has expired")
    if issued_at > now + leeway:
        raise InvalidClaim("iat", "the token's iat is in the future")
    if expires_at <= issued_at:
        raise InvalidClaim("exp", "the token's exp is not after its iat")
    if not_before is not None and not_before > now + leeway:
        raise InvalidClaim("nbf", "the token is not valid yet (nbf)")

    return issued_at, expires_at


def check_token_type(claims: Mapping[str, Any]) -> None:
    """`token_type` must be `Bearer`."""
    if claims.get("token_type") != "Bearer":
        raise InvalidClaim("token_type", "the token's token_type is not Bearer")


def _remember(table: dict[K, V], key: K, value: V) -> V:
    # Claim values repeat: one consumer, one scope string, token after token.
    # The tables only hold answers for values that passed, and are emptied
    # when full, so they stay small whatever tokens arrive.
    if len(table) >= _REMEMBERED:
        table.clear()
    table[key] = value

    return value


def read_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Split the `scope` claim into scope tokens (RFC 6749 section 3.3)."""
    value = claims.get("scope")
    if not isinstance(value, str):
        raise InvalidClaim("scope", "the token's scope claim is missing or not text")
    known = _scopes_seen.get(value)
    if known is not None:
        return known
    if _SCOPE.fullmatch(value) is None:
        raise InvalidClaim(
            "scope", "the token's scope claim is not space-separated scope tokens"
        )

    return _remember(_scopes_seen, value, frozenset(value.split(" ")))


def read_org(value: object, name: str, settings: Settings) -> OrgId:
    """
    Parse an organisation id object such as `consumer` or `supplier`.

    Only `0192:<orgno>` under `iso6523-actorid-upis` is accepted by default.
    The orgno is never taken as "whatever follows the last colon".
    """
    if not isinstance(value, dict):
        raise InvalidClaim(name, f"the token's {name} claim is not an object")
    authority = value.get("authority")
    ident = value.get("ID")
    if not isinstance(authority, str) or not isinstance(ident, str):
        raise InvalidClaim(name, f"the token's {name} has no authority and ID")
    key = (authority, ident, settings.accept_subunits, settings.accept_eseal)
    known = _orgs_seen.get(key)
    if known is not None:
        return known

    org = _parse_org(authority, ident, name, settings)

    return _remember(_orgs_seen, key, org)


def _parse_org(authority: str, ident: str, name: str, settings: Settings) -> OrgId:
    if authority == ORGNO_AUTHORITY:
        icd, sep, rest = ident.partition(":")
        if icd == NORWEGIAN_ICD and sep:
            if is_valid_orgno(rest):
                return OrgId(authority, ident, rest)
            orgno, colon, unit = rest.partition(":")
            if (
                settings.accept_subunits
                and colon
                and unit
                and len(ident) <= _MAX_TEXT
                and is_valid_orgno(orgno)
            ):
                return OrgId(authority, ident, orgno)
    elif authority == _ESEAL_AUTHORITY and settings.accept_eseal:
        orgno = ident.removeprefix(_ESEAL_PREFIX)
        if ident.startswith(_ESEAL_PREFIX) and is_valid_orgno(orgno):
            return OrgId(authority, ident, orgno)

    raise InvalidClaim(
        name, f"the token's {name} is not a Norwegian organisation number"
    )


def check_audience(
    claims: Mapping[str, Any], accepted: tuple[str, ...]
) -> tuple[str, ...]:
    """
    Read `aud`; when audiences are configured, one of them must be in it.

    The legacy value `"unspecified"` counts as no audience.
    """
    value = claims.get("aud")
    if value is None:
        audience: tuple[str, ...] = ()
    elif isinstance(value, str):
        audience = (value,) if value != "unspecified" else ()
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        audience = tuple(a for a in value if a != "unspecified")
    else:
        raise InvalidClaim("aud", "the token's aud claim is not text or a list of text")

    if accepted and not any(a in accepted for a in audience):
        raise InvalidClaim("aud", "the token is not restricted to this API's audience")

    return audience


def check_pid(claims: Mapping[str, Any], required: bool) -> str | None:
    """`pid`, when present, is 11 digits; pid-restricted APIs require it."""
    value = claims.get("pid")
    if value is None:
        if required:
            raise InvalidClaim("pid", "this API accepts only pid-restricted tokens")
        return None
    if (
        not isinstance(value, str)
        or len(value) != 11
        or not value.isascii()
        or not value.isdigit()
    ):
        raise InvalidClaim("pid", "the token's pid is not an 11-digit national id")

    return value


def read_authorization_details(
    claims: Mapping[str, Any], settings: Settings
) -> tuple[SystemUser | None, tuple[Consent, ...]]:
    """
    Read Altinn system users and consents from `authorization_details`.

    A single object is accepted as well as a list, as parsers in the field do.
    Entries of other types are kept in the raw claims and otherwise ignored.
    """
    value = claims.get("authorization_details")
    if value is None:
        return None, ()
    entries = [value] if isinstance(value, Mapping) else value
    if not isinstance(entries, list) or not all(
        isinstance(e, Mapping) for e in entries
    ):
        raise InvalidClaim(
            "authorization_details", "authorization_details is not a list of objects"
        )

    system_user = None
    consents = []
    for entry in entries:
        kind = entry.get("type")
        if kind == _SYSTEM_USER:
            if system_user is not None:
                raise InvalidClaim(
                    "authorization_details", "the token names more than one system user"
                )
            system_user = _system_user(entry, settings)
        elif kind == _CONSENT:
            consents.append(_consent(entry, settings))

    return system_user, tuple(consents)


def _system_user(entry: Mapping[str, Any], settings: Settings) -> SystemUser:
    org = read_org(entry.get("systemuser_org"), "systemuser_org", settings)
    ids = entry.get("systemuser_id")
    if isinstance(ids, str):
        ids = [ids]
    system_id = entry.get("system_id")
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, str) and 0 < len(i) <= _MAX_TEXT for i in ids)
        or not isinstance(system_id, str)
        or not system_id
    ):
        raise InvalidClaim(
            "authorization_details", "the system user entry lacks its ids or system_id"
        )

    return SystemUser(org, tuple(ids), system_id)


def _consent(entry: Mapping[str, Any], settings: Settings) -> Consent:
    ident = entry.get("id")
    if not isinstance(ident, str) or not ident:
        raise InvalidClaim("authorization_details", "the consent entry has no id")
    to_value = entry.get("to")
    to = read_org(to_value, "consent.to", settings) if to_value is not None else None
    from_party = entry.get("from")
    rights = entry.get("consentRights") or []
    if not isinstance(rights, list):
        rights = [rights]

    return Consent(
        id=ident,
        from_party=MappingProxyType(dict(from_party))
        if isinstance(from_party, Mapping)
        else None,
        to=to,
        consented=_optional_str(entry.get("consented")),
        valid_to=_optional_str(entry.get("validTo")),
        rights=tuple(
            MappingProxyType(dict(r)) for r in rights if isinstance(r, Mapping)
        ),
    )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# What changes from one token of a client to the next; everything else in its
# payload repeats, and so does what the checks make of it.
_VARYING = ("exp", "iat", "nbf", "jti")


def _repeating_fields(claims: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """Check the claims outside `_VARYING`; the identity fields they give."""
    fields = _BLANK_FIELDS.copy()
    fields["issuer"] = check_issuer(claims, settings.issuer)
    check_token_type(claims)
    fields["scopes"] = read_scopes(claims)
    consumer = read_org(claims.get("consumer"), "consumer", settings)
    if (
        settings.allowed_consumers is not None
        and consumer.orgno not in settings.allowed_consumers
    ):
        raise ConsumerNotAllowed("this consumer is not allowed to use this API")
    fields["consumer"] = consumer

    supplier = claims.get("supplier")
    if supplier is not None:
        fields["supplier"] = read_org(supplier, "supplier", settings)
    fields["system_user"], fields["consents"] = read_authorization_details(
        claims, settings
    )
    fields["client_id"] = _text(claims, "client_id")
    fields["client_amr"] = _optional_text(claims, "client_amr")
    fields["delegation_source"] = _optional_text(claims, "delegation_source")
    fields["audience"] = check_audience(claims, settings.audience)
    fields["pid"] = check_pid(claims, settings.require_pid)

    return fields


def _identity(
    fields: dict[str, Any],
    claims: dict[str, Any],
    now: float,
    leeway: float,
    kid: str,
) -> Identity:
    """Check the claims in `_VARYING` and build the identity, filling `fields`."""
    fields["issued_at"], fields["expires_at"] = check_times(claims, now, leeway)
    jti = claims.get("jti")
    if type(jti) is not str or not 0 < len(jti) <= _MAX_TEXT:
        jti = _text(claims, "jti")
    fields["jti"] = jti
    fields["kid"] = kid
    fields["claims"] = MappingProxyType(claims)

    return Identity._from_fields(fields)


def read_identity(
    claims: dict[str, Any], settings: Settings, now: float, *, kid: str = ""
) -> Identity:
    """
    Check every claim and build the identity; the signature is checked already.

    Args:
        claims: the token's payload.
        settings: what to accept.
        now: the current time, from the verifier's clock.
        kid: the id of the key that signed the token.
    """
    fields = _repeating_fields(claims, settings)

    return _identity(fields, claims, now, settings.leeway, kid)


class IdentityReader:
    """
    `read_identity` for one `Settings`, checking what repeats once per client.

    A client's tokens differ only in `exp`, `iat`, `nbf` and `jti`; the rest
    of the payload, written out as JSON, is the key to what the other checks
    made of it. Only payloads that passed are remembered, at most 4096, and
    the table is emptied when full. Thread-safe.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._leeway = settings.leeway
        self._seen: dict[bytes, dict[str, Any]] = {}

    def read(self, claims: dict[str, Any], now: float, kid: str) -> Identity:
        """Check every claim and build the identity, as `read_identity` does."""
        rest = claims.copy()
        for name in _VARYING:
            rest.pop(name, None)
        try:
            key = orjson.dumps(rest)
        except orjson.JSONEncodeError:
            # Numbers beyond 64 bits or lone surrogates: valid, but too rare
            # to remember.
            return read_identity(claims, self.settings, now, kid=kid)

        fields = self._seen.get(key)
        if fields is None:
            fields = _repeating_fields(claims, self.settings)
            # Kept as a copy: the bytes orjson answers hold about 4 KiB each.
            _remember(self._seen, bytes(memoryview(key)), fields)

        return _identity(fields.copy(), claims, now, self._leeway, kid)
