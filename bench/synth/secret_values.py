"""Planted secret values that need more than a call to tests/secretgen.py.

Both are derived from the build's seed, like every other byte of the image, so the same seed
plants the same secrets and bench/run.py can match them by sha256.
"""

from __future__ import annotations

import secretgen as gen

from .model import Build


def safe_password(build: Build, n: int) -> str:
    """secretgen.password() without '&': the generic rule's capture stops at '&' (shell, URLs)."""
    k = 0
    while "&" in (pw := gen.password(build.secret_seed(n) + 7919 * k)):
        k += 1
    return pw


def ec_private_key(build: Build) -> tuple[str, str]:
    """A real P-256 key derived from the seed (openssl's keygen cannot be seeded): PKCS#8 PEM of
    the private key, and the PEM of its public key (a near-miss placed elsewhere)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(build.rng("secret/ec-key").randbytes(32)) % (n - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv.decode(), pub.decode()
