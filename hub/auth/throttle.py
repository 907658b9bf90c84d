"""Throttling failed sign-ins, per account and per client address.

Each failure is a `login_attempt` row, so the count holds across web workers and restarts.
An account with `account_limit` failures within `window` is locked until the oldest of
those leaves the window; an address gets a higher limit (one office, several people)
before it is locked for every account (one attacker trying many accounts). While locked,
the password is not even checked, so a locked account tells nothing about guesses.
A successful sign-in clears the account's failures, not the address's.

Checks and records for one account run under a transaction-level advisory lock on its
email, so parallel guesses (from several workers) are counted one after the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.schema import login_attempt


@dataclass(frozen=True)
class ThrottlePolicy:
    account_limit: int = 5
    address_limit: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Lockout:
    scope: str  # "account" | "address"
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        if self.scope == "account":
            return f"Too many failed sign-ins for this account. Try again in {wait}."
        return f"Too many failed sign-ins from your network address. Try again in {wait}."


def lock_account(conn: Connection, email: str) -> None:
    """Serialise sign-ins of one account until the transaction ends."""
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended("login:" + email, 0))))


def _retry_after(conn: Connection, column: sa.Column, value: str, limit: int, window: timedelta) -> int | None:
    """Seconds until fewer than `limit` failures are left in the window, or None if already fewer."""
    # the limit-th most recent failure in the window: once it leaves, limit-1 are left
    pivot = (
        sa.select(login_attempt.c.created_at)
        .where(column == value, login_attempt.c.created_at > sa.func.now() - window)
        .order_by(login_attempt.c.created_at.desc())
        .offset(limit - 1)
        .limit(1)
        .scalar_subquery()
    )
    seconds = conn.scalar(sa.select(sa.func.extract("epoch", pivot + window - sa.func.now())))
    return None if seconds is None else max(1, math.ceil(float(seconds)))


def check(conn: Connection, email: str, address: str, policy: ThrottlePolicy = ThrottlePolicy()) -> Lockout | None:
    for scope, column, value, limit in (
        ("account", login_attempt.c.email, email, policy.account_limit),
        ("address", login_attempt.c.address, address, policy.address_limit),
    ):
        wait = _retry_after(conn, column, value, limit, policy.window)
        if wait is not None:
            return Lockout(scope, wait)
    return None


def record_failure(conn: Connection, email: str, address: str, policy: ThrottlePolicy = ThrottlePolicy()) -> None:
    """One more failure; this account's and address's failures older than the window go."""
    conn.execute(sa.delete(login_attempt).where(
        sa.or_(login_attempt.c.email == email, login_attempt.c.address == address),
        login_attempt.c.created_at <= sa.func.now() - policy.window,
    ))
    conn.execute(sa.insert(login_attempt).values(email=email, address=address))


def clear_account(conn: Connection, email: str) -> None:
    conn.execute(sa.delete(login_attempt).where(login_attempt.c.email == email))
