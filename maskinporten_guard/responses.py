"""
The HTTP answer to a refused request: RFC 6750 headers, RFC 9457 body.

Both adapters render refusals through `error_response`, so ASGI and WSGI
answer byte for byte the same. Bodies are `application/problem+json` with the
RFC 6750 error code as an extension member; descriptions are written by this
library (never echoed from the request) and can be left out entirely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

from .errors import AuthError, KeysUnavailable

__all__ = ["ErrorResponse", "error_response"]

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A complete refusal: status, headers (lower-case names) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def error_response(
    error: AuthError, *, realm: str, expose_descriptions: bool = True
) -> ErrorResponse:
    """
    Render an `AuthError` as the response a client should get.

    Args:
        error: the refusal.
        realm: the `realm` of the `WWW-Authenticate` challenge.
        expose_descriptions: include the human description in the header and
            the body; turn off to say only the status and the error code.
    """
    problem: dict[str, object] = {
        "type": "about:blank",
        "title": HTTPStatus(error.status).phrase,
        "status": error.status,
    }
    if error.error is not None:
        problem["error"] = error.error
    if expose_descriptions:
        problem["detail"] = error.description
    body = json.dumps(problem, separators=(",", ":")).encode()

    headers = [
        ("content-type", PROBLEM_JSON),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    challenge = error.www_authenticate(realm, include_description=expose_descriptions)
    if challenge is not None:
        headers.append(("www-authenticate", challenge))
    if isinstance(error, KeysUnavailable):
        headers.append(("retry-after", str(error.retry_after)))

    return ErrorResponse(error.status, tuple(headers), body)
