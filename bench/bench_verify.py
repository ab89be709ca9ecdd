"""
How fast one token is verified, against the floor and the peers.

    .venv/bin/python bench/bench_verify.py

Every row verifies the same production-shaped RS256 token (2048-bit key):

- floor: one RSA-2048 PKCS#1 v1.5 verify with cryptography, nothing else;
- pyjwt: `jwt.decode` with the key, issuer and RS256 required;
- authlib, joserfc: their JWT decode of the same token with the same key;
- guard uncached: this project's full verification with the cache off
  (strict parsing, signature, every claim rule) of one client's tokens, 500
  of them with their own jti, iat and signature taken in turn: how a
  verifier sees a client that renews its token;
- guard uncached, new client: the same, with the claims of the client's
  first token checked one by one: the tables that remember what a check made
  of a client's values (the reader's, the scopes', the organisation ids') are
  emptied before each call. The header is the issuer's and stays remembered;
- guard uncached, escaped payload: a payload whose JSON puts a backslash
  before every "/", as some JOSE libraries write it, so orjson's answer
  cannot be taken and the standard library parses it;
- guard cached: the same token again, answered from the verified-token cache.

Each row is its best of 15 rounds, in microseconds of CPU time per call; the
rows take turns round by round.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from maskinporten_guard import claims
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


FLOOR = "floor: cryptography RSA-2048 verify"
CACHED = "guard verify, cached"
ROUNDS = 15
RENEWED = 500


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()

    return (time.process_time() - start) / calls * 1e6


def _best_of_rounds(
    rows: list[tuple[str, Callable[[], object]]], rounds: int
) -> dict[str, float]:
    """
    Each row's best round, the rows taking turns round by round.

    Taking turns spreads whatever else the machine does over every row alike,
    so the ratios to the floor hold even when the absolute figures drift.
    """
    best = {name: float("inf") for name, _ in rows}
    for _ in range(rounds):
        for name, fn in rows:
            calls = 100_000 if name == CACHED else 1000
            best[name] = min(best[name], _per_call(fn, calls))

    return best


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
        (FLOOR, floor),
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

    # One client's tokens, each with its own jti and signature, taken in turn:
    # what a verifier sees from a client that renews its token.
    scope = "demo:inspections.read demo:inspections.write"
    renewed = itertools.cycle(
        [
            fake.mint(scope, "991825827", issued_at=clock() - n, lifetime=3600)
            for n in range(RENEWED)
        ]
    )
    uncached = SyncVerifier(
        settings.with_options(token_cache_size=0), _Keys(key), clock=clock
    )
    cached = SyncVerifier(settings, _Keys(key), clock=clock)
    cached.verify(token)
    rows.append(("guard verify, uncached", lambda: uncached.verify(next(renewed))))

    forgetful = SyncVerifier(
        settings.with_options(token_cache_size=0), _Keys(key), clock=clock
    )
    remembered = (
        forgetful._core._reader._seen,
        claims._scopes_seen,
        claims._orgs_seen,
    )

    def new_client() -> None:
        for table in remembered:
            table.clear()
        forgetful.verify(next(renewed))

    rows.append(("guard verify, uncached, new client", new_client))
    escaped = itertools.cycle(
        [
            fake.sign(
                json.dumps(fake.claims(scope), separators=(",", ":"))
                .replace("/", "\\/")
                .encode()
            )
            for _ in range(RENEWED)
        ]
    )
    rows.append(
        (
            "guard verify, uncached, escaped payload",
            lambda: uncached.verify(next(escaped)),
        )
    )
    rows.append((CACHED, lambda: cached.verify(token)))

    for _, fn in rows:
        fn()
    best = _best_of_rounds(rows, ROUNDS)
    floor_us = best[FLOOR]
    print(f"best of {ROUNDS} rounds, the rows taking turns, CPU time per call")
    print(f"{'what':42s} {'us/call':>9s} {'x floor':>8s}")
    for name, us in best.items():
        print(f"{name:42s} {us:9.2f} {us / floor_us:8.2f}")


if __name__ == "__main__":
    main()
