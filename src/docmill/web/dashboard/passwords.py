"""Password hashes for dashboard users: scrypt (the default) or PBKDF2-SHA256, from hashlib.

A hash is one self-describing string, safe in an environment variable::

    scrypt$16384$8$1$<salt, base64>$<key, base64>
    pbkdf2_sha256$600000$<salt, base64>$<key, base64>

``python -m docmill.web.dashboard`` asks for a password and prints its hash.
Verification compares in constant time; a hash that cannot be parsed never matches.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import os
import sys
from collections.abc import Callable

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PBKDF2_ITERATIONS = 600_000
KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The scrypt hash of ``password`` with a fresh random salt."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def is_valid_hash(encoded: str) -> bool:
    """Whether ``encoded`` is a hash this module can check (for configuration errors)."""
    return _parse(encoded) is not None


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``, compared in constant time."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    derive, key = parsed
    return hmac.compare_digest(derive(password.encode("utf-8")), key)


def _parse(encoded: str) -> tuple[Callable[[bytes], bytes], bytes] | None:
    """(a function deriving a key from a password with the stored parameters, the stored key)."""
    parts = encoded.strip().split("$")
    try:
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
            if not key or n < 2 or n & (n - 1) or n > 2**20 or not 0 < r <= 32 or not 0 < p <= 16:
                return None
            return (
                lambda secret: hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=2**28)
            ), key
        if parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            iterations = int(parts[1])
            salt, key = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
            if not key or not 1_000 <= iterations <= 10_000_000:
                return None
            return (lambda secret: hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, len(key))), key
    except (ValueError, TypeError):
        return None
    return None


def main() -> int:
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("error: a dashboard password needs at least 8 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
