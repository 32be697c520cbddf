"""Agent passwords: scrypt hashes (standard library), compared in constant time.

A stored hash reads ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (base64 salt and key), so
the cost can be raised later without invalidating old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OWASP's scrypt minimum (N=2^17, r=8, p=1) costs 128 MiB and about 0.3 s on a
# shared 2-core machine; 2^15 keeps sign-in under 0.1 s at 32 MiB, and each hash
# still costs an attacker tens of milliseconds of memory-hard work.
N, R, P = 2 ** 15, 8, 1
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024  # scrypt reads all of it: refuse megabyte "passwords"


class WeakPassword(ValueError):
    """The password is too short or too long to be set."""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * 1024 * 1024, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """The storable hash of ``password``.

    Raises:
        WeakPassword: Fewer than :data:`MIN_LENGTH` or more than :data:`MAX_LENGTH`
            characters.
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    salt = secrets.token_bytes(16)
    key = _scrypt(password, salt, N, R, P)
    encode = base64.b64encode
    return f"scrypt${N}${R}${P}${encode(salt).decode()}${encode(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False for a malformed hash."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_LENGTH:
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, base64.b64decode(key))
    except (ValueError, TypeError):
        return False


_dummy: list[str] = []


def dummy_hash() -> str:
    """A hash no password matches: checked when the user name is unknown, so that a
    wrong name costs as long as a wrong password and timing does not reveal names."""
    if not _dummy:
        _dummy.append(hash_password(secrets.token_urlsafe(16)))
    return _dummy[0]
