"""One sign-in attempt: the throttle, then the password, then the bookkeeping, in one
transaction under the account's lock (hub/auth/throttle.py says why)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from hub.auth import throttle, users
from hub.auth.throttle import Lockout, ThrottlePolicy

WRONG = "Wrong email or password."


@dataclass(frozen=True)
class SignIn:
    user: users.User | None = None
    lockout: Lockout | None = None

    @property
    def message(self) -> str | None:
        """What the sign-in page says when it failed; the same for an unknown email, a wrong
        password and a disabled account, so the page tells nothing about which it was."""
        if self.user is not None:
            return None
        return self.lockout.message if self.lockout else WRONG


def sign_in(conn: Connection, email: str, password: str, address: str, policy: ThrottlePolicy = ThrottlePolicy()) -> SignIn:
    key = email.strip().lower()[: users.MAX_EMAIL]  # the throttle's key, whether or not it is a valid email
    throttle.lock_account(conn, key)
    lockout = throttle.check(conn, key, address, policy)
    if lockout is not None:
        return SignIn(lockout=lockout)
    user = users.authenticate(conn, email, password)
    if user is None:
        throttle.record_failure(conn, key, address, policy)
        return SignIn()
    throttle.clear_account(conn, key)
    return SignIn(user=user)
