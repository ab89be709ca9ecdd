"""
Take the bearer token out of a request, as RFC 6750 section 2.1 describes it.

Only the `Authorization` header is read. Everything ambiguous is refused with
400 `invalid_request` rather than guessed at: several `Authorization` headers,
several credentials in one, a token in the query string (RFC 6750 section 2.3
is not supported: URLs end up in logs), or a header longer than any real token.
A request with no bearer credential at all, or with another scheme such as
Basic, answers `MissingToken`: 401 without an error code (section 3.1).
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidRequest, MissingToken

__all__ = ["extract_bearer", "has_query_token"]

_SCHEME = "bearer"


def has_query_token(query_string: bytes | str) -> bool:
    """Tell whether the query string carries an `access_token` parameter."""
    if isinstance(query_string, bytes):
        if b"access_token" not in query_string:
            return False
        query = query_string.decode("latin-1")
    else:
        query = query_string
        if "access_token" not in query:
            return False

    return any(
        part.split("=", 1)[0].strip() == "access_token" for part in query.split("&")
    )


def extract_bearer(
    authorization: Sequence[str], query_string: bytes | str, *, max_bytes: int
) -> str:
    """
    Answer the one bearer token a request carries.

    Args:
        authorization: the values of every `Authorization` header, in order.
        query_string: the raw query string, checked for `access_token`.
        max_bytes: the longest token accepted; longer headers are refused.

    Raises:
        MissingToken: no bearer credential was sent.
        InvalidRequest: the request is ambiguous or malformed.
    """
    if query_string and has_query_token(query_string):
        raise InvalidRequest(
            "send the token in the Authorization header, not in the query string"
        )
    if not authorization:
        raise MissingToken("this API requires a Maskinporten bearer token")
    if len(authorization) > 1:
        raise InvalidRequest("the request has more than one Authorization header")

    value = authorization[0]
    if len(value) > max_bytes + 16:
        raise InvalidRequest("the Authorization header is too long")
    value = value.strip(" \t")
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != _SCHEME:
        raise MissingToken("this API requires a Maskinporten bearer token")

    token = credentials.lstrip(" ")
    if not token:
        raise InvalidRequest("the Authorization header has no bearer token")
    if " " in token or "\t" in token or "," in token:
        raise InvalidRequest("the Authorization header has more than one credential")

    return token
