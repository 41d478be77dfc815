"""Small values drawn from a seeded random.Random: ids, addresses, versions, sizes, keys, digests.

Every maker takes the caller's generator rather than owning one, so a file's content depends
only on the (seed, path) its generator was made from, never on the order files are generated in.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import uuid


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hexstr(rng: random.Random, nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def lognormal(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, rng.lognormvariate(math.log(median), sigma))))


def version(rng: random.Random) -> str:
    return f"{rng.randrange(0, 9)}.{rng.randrange(0, 30)}.{rng.randrange(0, 20)}"


def ssh_public_key(rng: random.Random, comment: str) -> bytes:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + rng.randbytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}\n".encode()


def pem_block(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
