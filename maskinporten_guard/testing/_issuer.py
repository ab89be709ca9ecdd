"""
A fake Maskinporten that makes keys and mints production-shaped tokens.

Tokens are built by hand, not through a JWT library, so that they match what
Maskinporten issues to the byte (header `{"kid", "alg"}` and no `typ`, `scope`
as one space-separated string, `consumer` as an ISO 6523 object) and so that a
test can also build every malformed variant a real attacker could send.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..clock import Clock, system_clock

__all__ = ["OMIT", "FakeMaskinporten", "SigningKey", "b64url", "jwk_thumbprint", "org"]

OMIT: Any = object()
"""Pass as a claim or header value to leave that member out of a token."""

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}

_pool_lock = threading.Lock()
_pool: dict[int, list[rsa.RSAPrivateKey]] = {}


def _pooled_key(size: int, index: int) -> rsa.RSAPrivateKey:
    """
    Return the index-th RSA key of a size, generating it on first use.

    Generating RSA keys costs tens of milliseconds each, so a test run shares
    them across fakes; every fake still gets its own kids.
    """
    with _pool_lock:
        keys = _pool.setdefault(size, [])
        while len(keys) <= index:
            keys.append(rsa.generate_private_key(public_exponent=65537, key_size=size))

        return keys[index]


def b64url(data: bytes | str) -> str:
    """Base64url without padding, as JWS uses it."""
    raw = data.encode() if isinstance(data, str) else data

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def org(orgno: str, authority: str = "iso6523-actorid-upis") -> dict[str, str]:
    """An organisation id object as Maskinporten writes it (`0192:<orgno>`)."""
    return {"authority": authority, "ID": f"0192:{orgno}"}


def jwk_thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """
    The RFC 7638 SHA-256 thumbprint of an RSA public key, base64url.

    The same key always gets the same thumbprint, so it serves as a `kid` that
    two processes sharing one key file agree on without talking.
    """
    numbers = public_key.public_numbers()
    members = {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)

    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True)
class SigningKey:
    """A private key the fake signs with, and the kid it publishes it under."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def from_private_key(cls, private_key: rsa.RSAPrivateKey) -> SigningKey:
        """Wrap an existing key, published under its RFC 7638 thumbprint."""
        return cls(jwk_thumbprint(private_key.public_key()), private_key)

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public JWK, shaped like the ones Maskinporten publishes."""
        numbers = self.private_key.public_key().public_numbers()
        jwk: dict[str, Any] = {
            "kty": "RSA",
            "e": _uint(numbers.e),
            "use": "sig",
            "kid": self.kid,
            "alg": "RS256",
            "n": _uint(numbers.n),
        }
        jwk.update(extra)

        return {k: v for k, v in jwk.items() if v is not OMIT}


class FakeMaskinporten:
    """
    An in-process stand-in for Maskinporten: keys, a JWKS, and token minting.

    Use it directly in unit tests (`transport()` serves the metadata and JWKS
    to an httpx client without a socket), or behind `IssuerServer` for a real
    HTTP issuer on 127.0.0.1.

    Args:
        issuer: the `iss` to mint with; `IssuerServer` sets it to its own URL.
        clock: the time tokens are minted at.
        key_size: RSA key size in bits for the keys it makes.
        key: sign with this key instead of a new one, for example one loaded
            from a file that another process signs with too.
    """

    def __init__(
        self,
        issuer: str = "https://test.maskinporten.no/",
        *,
        clock: Clock = system_clock,
        key_size: int = 2048,
        key: SigningKey | None = None,
    ) -> None:
        self.issuer = issuer
        self.clock = clock
        self.key_size = key_size
        self._next_key = 0
        self._lock = threading.Lock()
        self.keys: list[SigningKey] = [key or self.new_key()]
        self.extra_jwks: list[dict[str, Any]] = []

    @property
    def jwks_uri(self) -> str:
        """Where this issuer serves its key set."""
        return self.issuer.rstrip("/") + "/jwk"

    @property
    def current_key(self) -> SigningKey:
        """The key new tokens are signed with: the newest one."""
        return self.keys[-1]

    def new_key(self, kid: str | None = None, size: int | None = None) -> SigningKey:
        """Make a key that is not published yet (for rotation or forgery)."""
        with self._lock:
            index = self._next_key
            self._next_key += 1
        private = _pooled_key(size or self.key_size, index)
        kid = kid or b64url(secrets.token_bytes(32))

        return SigningKey(kid, private)

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        """
        Publish a new key and sign with it from now on.

        Args:
            keep_old: keep the previous keys published, as Maskinporten does
                during a rotation; False drops them at once.
        """
        key = self.new_key()
        self.keys = [*self.keys, key] if keep_old else [key]

        return key

    def jwks(self) -> dict[str, Any]:
        """The published key set, as the JWKS endpoint returns it."""
        return {"keys": [k.jwk() for k in self.keys] + list(self.extra_jwks)}

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 authorization server metadata document."""
        base = self.issuer.rstrip("/")

        return {
            "issuer": self.issuer,
            "token_endpoint": f"{base}/token",
            "jwks_uri": self.jwks_uri,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "grant_types_supported": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384"],
            "authorization_details_types_supported": [
                "urn:altinn:systemuser",
                "urn:altinn:consent",
            ],
        }

    def transport(self) -> httpx.MockTransport:
        """An httpx transport serving metadata and JWKS without a socket."""

        def handle(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if path.endswith("/.well-known/oauth-authorization-server"):
                return httpx.Response(200, json=self.metadata())
            if path.endswith("/jwk"):
                return httpx.Response(200, json=self.jwks())
            return httpx.Response(404)

        return httpx.MockTransport(handle)

    def claims(
        self,
        scope: str | Iterable[str] = "demo:inspections.read",
        consumer: str = "991825827",
        *,
        supplier: str | None = None,
        delegation_source: str | None = None,
        system_user: str | None = None,
        system_id: str = "991825827_demo_system",
        audience: str | list[str] | None = None,
        pid: str | None = None,
        lifetime: float = 120,
        issued_at: float | None = None,
        client_amr: str = "private_key_jwt",
        client_id: str | None = None,
        jti: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """
        The claims of a token, laid out the way Maskinporten lays them out.

        Args:
            scope: one scope string as Maskinporten sends it, or several scopes.
            consumer: the consumer orgno.
            supplier: a supplier orgno; adds `delegation_source` too.
            delegation_source: override the Altinn URL of a delegation.
            system_user: the customer orgno of an Altinn system user token; its
                `systemuser_id` stays the same for one system and customer.
            system_id: the vendor system id for a system user token.
            audience: the `aud` claim, when the token is audience-restricted.
            pid: an 11-digit national id, for pid-restricted tokens.
            lifetime: seconds from `iat` to `exp`.
            issued_at: `iat`; defaults to the clock's time.
            client_amr: how the client authenticated.
            client_id: the client id; by default a UUID that stays the same
                for one organisation (the supplier when delegated), as a
                client's tokens all carry its id.
            jti: the token id; random by default.
            extra: claims to add or override; `OMIT` removes one.
        """
        now = int(self.clock() if issued_at is None else issued_at)
        scope_text = scope if isinstance(scope, str) else " ".join(scope)
        claims: dict[str, Any] = {}
        if system_user is not None:
            claims["authorization_details"] = [
                {
                    "type": "urn:altinn:systemuser",
                    "systemuser_org": org(system_user),
                    "systemuser_id": [_stable_id(system_id, system_user)],
                    "system_id": system_id,
                }
            ]
        claims.update(
            {
                "scope": scope_text,
                "iss": self.issuer,
                "client_amr": client_amr,
                "token_type": "Bearer",
                "exp": int(now + lifetime),
                "iat": now,
                "client_id": client_id or _stable_id(self.issuer, supplier or consumer),
                "jti": jti or b64url(secrets.token_bytes(32)),
                "consumer": org(consumer),
            }
        )
        if supplier is not None:
            claims["supplier"] = org(supplier)
            claims["delegation_source"] = delegation_source or "https://www.altinn.no/"
        elif delegation_source is not None:
            claims["delegation_source"] = delegation_source
        if audience is not None:
            claims["aud"] = audience
        if pid is not None:
            claims["pid"] = pid
        for name, value in (extra or {}).items():
            claims[name] = value

        return {k: v for k, v in claims.items() if v is not OMIT}

    def mint(
        self,
        scope: str | Iterable[str] = "demo:inspections.read",
        consumer: str = "991825827",
        *,
        key: SigningKey | None = None,
        alg: str = "RS256",
        header: Mapping[str, Any] | None = None,
        **claim_options: Any,
    ) -> str:
        """
        Mint a signed token, production-shaped unless told otherwise.

        Args:
            scope: the scope string or scopes, as in `claims`.
            consumer: the consumer orgno.
            key: sign with this key instead of the current one (an unpublished
                key makes a forged token).
            alg: the `alg` header and the hash used to sign.
            header: header members to add or override; `OMIT` removes one.
            claim_options: passed to `claims`.
        """
        claims = self.claims(scope, consumer, **claim_options)

        return self.sign(claims, key=key, alg=alg, header=header)

    def sign(
        self,
        claims: Mapping[str, Any] | bytes,
        *,
        key: SigningKey | None = None,
        alg: str = "RS256",
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign claims (a mapping, or raw payload bytes) into a compact JWS."""
        key = key or self.current_key
        head: dict[str, Any] = {"kid": key.kid, "alg": alg}
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not OMIT}
        payload = claims if isinstance(claims, bytes) else _dumps(claims)
        signing_input = f"{b64url(_dumps(head))}.{b64url(payload)}"
        digest = _HASHES.get(alg, hashes.SHA256)()
        signature = key.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), digest
        )

        return f"{signing_input}.{b64url(signature)}"


def _stable_id(*names: str) -> str:
    """A UUID that names always give again, like a registered client's id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(names)))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
