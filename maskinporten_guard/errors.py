"""
Every error maskinporten-guard raises, in one tree.

    MaskinportenGuardError
    ├── ConfigurationError          a setting is wrong; raised at start-up
    ├── KeyFetchError               one JWKS or metadata fetch failed (internal)
    ├── StoreError                  the grant store failed or holds a newer schema
    └── AuthError                   a request is refused; knows its HTTP answer
        ├── InvalidRequest          400 invalid_request
        ├── MissingToken            401, no error attribute (RFC 6750 section 3.1)
        ├── InvalidToken            401 invalid_token
        │   ├── MalformedToken      not a well-formed compact JWS
        │   ├── UnsupportedAlgorithm
        │   ├── UnknownKey          no published key has the token's kid
        │   ├── InvalidSignature
        │   ├── TokenExpired
        │   └── InvalidClaim        a claim is missing, mistyped or not accepted
        ├── InsufficientScope       403 insufficient_scope
        ├── ConsumerNotAllowed      403 insufficient_scope, for the consumer rules
        └── KeysUnavailable         503 with Retry-After; no usable signing keys

Messages name the claim or setting at fault and never contain the token. Text
that came from a token is shortened and escaped before it reaches a message.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigurationError",
    "ConsumerNotAllowed",
    "InsufficientScope",
    "InvalidClaim",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidToken",
    "KeyFetchError",
    "KeysUnavailable",
    "MalformedToken",
    "MaskinportenGuardError",
    "MissingToken",
    "StoreError",
    "TokenExpired",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "safe_text",
]


def safe_text(value: object, limit: int = 64) -> str:
    """
    Render an untrusted value for a message, a header or a log line.

    Printable ASCII stays as it is, except `"`, `\\` and `%`; every other
    character is percent-encoded as its UTF-8 bytes (`%22`, `%5C`, `%25`,
    `%0A`, ...). The result fits RFC 6750's `error_description` grammar, a
    JSON string and a log line unchanged, and is at most about `limit`
    characters of the original long.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isascii() and text.isprintable() and not _ESCAPED.intersection(text):
        return text

    return "".join(
        ch
        if " " <= ch <= "~" and ch not in _ESCAPED
        else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in text
    )


_ESCAPED = frozenset('"\\%')


class MaskinportenGuardError(Exception):
    """Base of every error this library raises."""


class ConfigurationError(MaskinportenGuardError, ValueError):
    """A setting is missing or wrong; raised when the settings are built."""


class KeyFetchError(MaskinportenGuardError):
    """One fetch of the issuer metadata or key set failed."""


class StoreError(MaskinportenGuardError):
    """
    The grant store could not be opened, read or written.

    The ledger keeps its counts and retries when a write fails; a report
    raises it to the caller.
    """


class AuthError(MaskinportenGuardError):
    """
    A request is refused, with everything needed to answer it.

    Attributes:
        status: the HTTP status to answer with.
        error: the RFC 6750 error code, or None when no token was sent.
        reason: a short, stable code for logs, metrics and the ledger.
        description: a human sentence safe to show to the client.
    """

    status: int = 401
    error: str | None = "invalid_token"
    reason: str = "invalid_token"

    def __init__(self, description: str, *, reason: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        if reason is not None:
            self.reason = reason

    def www_authenticate(
        self,
        realm: str,
        scope: str | None = None,
        *,
        include_description: bool = True,
    ) -> str | None:
        """
        Build the `WWW-Authenticate` value for this error (RFC 6750 section 3).

        Args:
            realm: the protection realm, chosen by the provider.
            scope: the space-separated scopes that would have been enough.
            include_description: add `error_description`.
        """
        parts = [f'Bearer realm="{safe_text(realm, 128)}"']
        if self.error is not None:
            parts.append(f'error="{self.error}"')
            if include_description:
                description = safe_text(self.description, 200)
                parts.append(f'error_description="{description}"')
        if scope:
            parts.append(f'scope="{safe_text(scope, 512)}"')

        return ", ".join(parts)


class InvalidRequest(AuthError):
    """The request is malformed: several credentials, a token in the query, ..."""

    status = 400
    error = "invalid_request"
    reason = "invalid_request"


class MissingToken(AuthError):
    """No bearer token was sent; the answer carries no error attribute."""

    status = 401
    error = None
    reason = "missing_token"


class InvalidToken(AuthError):
    """The token is not one this API accepts."""


class MalformedToken(InvalidToken):
    """The token is not a well-formed compact JWS."""

    reason = "malformed"


class UnsupportedAlgorithm(InvalidToken):
    """The token's `alg` is not in the allow-list."""

    reason = "algorithm"


class UnknownKey(InvalidToken):
    """No key in the issuer's key set has the token's `kid`."""

    reason = "unknown_kid"


class InvalidSignature(InvalidToken):
    """The signature does not verify with the issuer's key."""

    reason = "signature"


class TokenExpired(InvalidToken):
    """The token's `exp` has passed (beyond the leeway)."""

    reason = "expired"


class InvalidClaim(InvalidToken):
    """
    A claim is missing, has the wrong type, or holds a value that is refused.

    Attributes:
        claim: the name of the claim at fault.
    """

    def __init__(self, claim: str, description: str) -> None:
        super().__init__(description, reason=f"claim:{claim}")
        self.claim = claim


class InsufficientScope(AuthError):
    """
    The token is valid but lacks the scope the route requires.

    Attributes:
        required: the scopes that would have been enough, for the header.
    """

    status = 403
    error = "insufficient_scope"
    reason = "insufficient_scope"

    def __init__(self, description: str, *, required: tuple[str, ...] = ()) -> None:
        super().__init__(description)
        self.required = required

    def www_authenticate(
        self,
        realm: str,
        scope: str | None = None,
        *,
        include_description: bool = True,
    ) -> str | None:
        return super().www_authenticate(
            realm,
            scope or " ".join(self.required),
            include_description=include_description,
        )


class ConsumerNotAllowed(AuthError):
    """The token is valid but its consumer or supplier is refused by the route."""

    status = 403
    error = "insufficient_scope"
    reason = "consumer"


class KeysUnavailable(AuthError):
    """
    No usable signing keys: the key set could not be fetched, or is too stale.

    The client is not at fault, so the answer is 503 with `Retry-After`.
    """

    status = 503
    error = None
    reason = "keys_unavailable"

    def __init__(self, description: str, *, retry_after: int = 30) -> None:
        super().__init__(description)
        self.retry_after = retry_after

    def www_authenticate(
        self,
        realm: str,
        scope: str | None = None,
        *,
        include_description: bool = True,
    ) -> str | None:
        return None
