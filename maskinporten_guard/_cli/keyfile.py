"""
Key files shared between `mint` and `serve-issuer`, and client key files.

A signing key file is a PKCS #8 PEM private key. Its `kid` is the RFC 7638
thumbprint of the public key, so two processes reading one file sign and
publish under the same `kid` without talking to each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..testing import SigningKey
from .app import UsageProblem

__all__ = ["load_or_create_signing_key", "load_public_key"]


def load_or_create_signing_key(path: Path) -> SigningKey:
    """
    The signing key in `path`, made and written there (mode 0600) if absent.

    Raises:
        UsageProblem: the file exists but holds no RSA private key.
    """
    if not path.exists():
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        return SigningKey.from_private_key(private_key)

    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageProblem(
            f"{path} holds no unencrypted PEM private key: {exc}"
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise UsageProblem(f"{path} holds a key that is not RSA")

    return SigningKey.from_private_key(loaded)


def load_public_key(path: Path) -> rsa.RSAPublicKey:
    """
    An RSA public key from a PEM file holding the public or the private key.

    Raises:
        UsageProblem: the file cannot be read or holds no RSA key.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageProblem(f"cannot read the key file {path}: {exc}") from None
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            key: object = private.public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise UsageProblem(f"{path} holds no usable PEM key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise UsageProblem(f"{path} holds a key that is not RSA")

    return key
