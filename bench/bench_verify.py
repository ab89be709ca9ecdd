"""
How fast one token is verified, against the floor and the peers.

    .venv/bin/python bench/bench_verify.py

Every row verifies the same production-shaped RS256 token (2048-bit key):

- floor: one RSA-2048 PKCS#1 v1.5 verify with cryptography, nothing else;
- pyjwt: `jwt.decode` with the key, issuer and RS256 required;
- authlib, joserfc: their JWT decode of the same token with the same key;
- guard uncached: this project's full verification with the cache off
  (strict parsing, signature, every claim rule);
- guard cached: the same token again, answered from the verified-token cache.

Each row is the best of several rounds of many calls, in microseconds per call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from maskinporten_guard.clock import ManualClock
from maskinporten_guard.keys import VerificationKey
from maskinporten_guard.settings import Settings
from maskinporten_guard.testing import FakeMaskinporten
from maskinporten_guard.verifier import SyncVerifier


class _Keys:
    def __init__(self, key: VerificationKey) -> None:
        self.key = key

    def cached(self, kid: str) -> VerificationKey | None:
        return self.key if kid == self.key.kid else None

    def get_key(self, kid: str) -> VerificationKey:
        raise LookupError(kid)

    def prefetch(self) -> bool:
        return True

    def close(self) -> None:
        pass


def _per_call(fn: Callable[[], object], calls: int, rounds: int = 7) -> float:
    results = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        results.append((time.process_time() - start) / calls * 1e6)

    return min(results)


def main() -> None:
    clock = ManualClock(time.time())
    fake = FakeMaskinporten(clock=clock)
    token = fake.mint("demo:inspections.read demo:inspections.write", "991825827")
    public = fake.current_key.private_key.public_key()
    key = VerificationKey(fake.current_key.kid, public, "RS256", public.key_size)
    settings = Settings.custom(fake.issuer, jwks_uri=fake.jwks_uri)

    signing_input, _, sig = token.rpartition(".")
    signature = jwt.utils.base64url_decode(sig)
    message = signing_input.encode()

    def floor() -> None:
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

    def pyjwt() -> None:
        jwt.decode(
            token,
            public,
            algorithms=["RS256"],
            issuer=fake.issuer,
            options={"require": ["exp", "iat", "iss"], "verify_aud": False},
        )

    rows: list[tuple[str, Callable[[], object]]] = [
        ("floor: cryptography RSA-2048 verify", floor),
        ("pyjwt jwt.decode", pyjwt),
    ]

    try:
        from authlib.jose import JsonWebToken

        authlib_jwt = JsonWebToken(["RS256"])

        def authlib() -> None:
            claims = authlib_jwt.decode(token, public)
            claims.validate(now=int(clock()))

        rows.append(("authlib jwt.decode + validate", authlib))
    except ImportError:
        pass

    try:
        from joserfc import jwt as jose_jwt
        from joserfc.jwk import RSAKey

        jose_key = RSAKey.import_key(fake.current_key.jwk())
        registry = jose_jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": fake.issuer}
        )

        def joserfc() -> None:
            decoded = jose_jwt.decode(token, jose_key, algorithms=["RS256"])
            registry.validate(decoded.claims)

        rows.append(("joserfc jwt.decode + validate", joserfc))
    except ImportError:
        pass

    uncached = SyncVerifier(
        settings.with_options(token_cache_size=0), _Keys(key), clock=clock
    )
    cached = SyncVerifier(settings, _Keys(key), clock=clock)
    cached.verify(token)
    rows.append(("guard verify, uncached", lambda: uncached.verify(token)))
    rows.append(("guard verify, cached", lambda: cached.verify(token)))

    floor_us = _per_call(floor, 2000)
    print(f"{'what':40s} {'us/call':>9s} {'x floor':>8s}")
    for name, fn in rows:
        calls = 200_000 if "cached" in name and "un" not in name else 2000
        us = _per_call(fn, calls)
        print(f"{name:40s} {us:9.2f} {us / floor_us:8.2f}")
    floor_rounds = [_per_call(floor, 500, 1) for _ in range(5)]
    print(
        f"(floor again, median of 5 rounds: {statistics.median(floor_rounds):.2f} us)"
    )


if __name__ == "__main__":
    main()
