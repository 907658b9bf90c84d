"""Password hashing with argon2id (argon2-cffi's PasswordHasher, RFC 9106's recommended
second profile by default). A stored hash names its own parameters, so raising them later
needs no migration: `verify` tells when a hash should be redone, and sign-in redoes it
while the password is in hand."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10  # NIST SP 800-63B asks for at least 8; a settings page holding API keys asks a bit more
MAX_LENGTH = 1024  # argon2 takes any length; this bounds the work a single request can ask for


@cache
def hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, the library's current recommended parameters


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify(stored_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). A malformed stored hash never matches."""
    try:
        hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, hasher().check_needs_rehash(stored_hash)


@cache
def dummy_hash() -> str:
    """A hash of nothing anyone types, verified when the email is unknown, so an unknown
    account costs the same time as a wrong password and timing does not tell them apart."""
    return hash_password("no account has this password \x00")


def check_strength(password: str) -> None:
    """Raise ValueError with a message for a person when the password is too short or long."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"the password must have at most {MAX_LENGTH} characters")
