"""Placeholder until the key source lands (replaced by the keys branch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    public_key: RSAPublicKey
    alg: str | None
    size: int


AsyncKeySource: Any = None
SyncKeySource: Any = None
